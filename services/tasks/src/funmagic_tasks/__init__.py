"""The tasks service: tool catalog, tasks and their saga, banners."""
