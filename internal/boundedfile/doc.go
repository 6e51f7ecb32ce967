// Package boundedfile is how apmtel reads every file named by its
// configuration: CA certificates, *_FILE secrets, the telemetry JWKS, the
// schema file of `apmtel schema check`. A path is whatever an operator (or a
// mistake) put there — /dev/zero, a log file, a disk image — and os.ReadFile
// reads until EOF: APMTEL_SOURCE_CA_CERT=/dev/zero grew a worker to 19 GB
// in 5 s. Read stops at Limit and says which file and why.
package boundedfile
