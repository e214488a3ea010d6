#!/usr/bin/env bash
# Runs the embedding test (tests/e2e/embed.c), built by make check.
cd "$(dirname "$0")/../.."
exec "${B:-build/x86_64}/e2e/embed" guest/build
