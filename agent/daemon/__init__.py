"""The headless monitoring daemon: schedules, history, change detection, alerts."""
