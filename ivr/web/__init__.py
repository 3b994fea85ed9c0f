"""The web console: wallboard, agents' console, calls and cases, statistics, administration."""
