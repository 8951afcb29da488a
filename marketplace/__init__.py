"""Demo marketplace: a synthetic world with hidden ground truth, seeding, the closed-loop
storefront simulator, the Taobao importer and the offline evaluation harness."""
