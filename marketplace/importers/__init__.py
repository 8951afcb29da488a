"""File importers for external datasets (Taobao), dispatched by `import_events --format`."""
