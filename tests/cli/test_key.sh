#!/bin/sh
# test_key.sh - placeholder, being written
exit 77
