"""Reports and their delivery: rendering (Jinja), channels (email, Slack, webhook, file)."""
