"""Leads' reports: accuracy, learning curve, pre-label quality, team, agreement, flags and
the queue forecast, served from aggregates that are updated as annotations land."""
