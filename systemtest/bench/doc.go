// Package bench runs the benchmark scripts once, small, in the suite: they
// drive apmtel only through its commands and its test proxy, so a change of
// output, flag or record shape that breaks them fails here, not on the day
// someone measures (scripts/bench-run.sh once read raw Redis keys and
// silently stopped working when the key space changed).
package bench
