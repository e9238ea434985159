#!/bin/sh
# test_man.sh - placeholder, being written
exit 77
