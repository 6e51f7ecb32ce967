package workers

// Bridge is bridge, for tests.
var Bridge = bridge

// Transient is transient, for tests.
var Transient = transient
