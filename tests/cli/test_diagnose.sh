#!/bin/sh
# test_diagnose.sh - placeholder, being written
exit 77
