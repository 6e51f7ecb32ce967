// Package runtest writes realistic runs into a real run store for the tests
// of the code that only reads runs (the console, the metrics): every task
// goes through the store's own transitions (Create, Start, Record, Close,
// Seal), so what the readers see is what workers leave, including retried
// attempts, failures and uploads.
package runtest
