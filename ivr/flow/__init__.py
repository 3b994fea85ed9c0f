"""Pure call-flow logic: given the config, the time and the caller's keys, the next step.

Nothing here talks to Asterisk; :mod:`ivr.agi` translates the steps into AGI
commands, and tests drive the same flow with scripted input.
"""
