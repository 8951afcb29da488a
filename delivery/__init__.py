"""Ad delivery: the /rank decision (eligibility, candidates, scoring, auction, pacing,
exploration), tracking tokens and endpoints, attribution, the storefront snippet."""
