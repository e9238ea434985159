#!/bin/sh
# test_token.sh - placeholder, being written
exit 77
