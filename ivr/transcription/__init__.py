"""Transcription: recordings → vosk (per leg, word timestamps) → dialogue on the
call and its case. Jobs are rows claimed with a lease by worker processes."""
