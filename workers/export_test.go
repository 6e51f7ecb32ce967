package workers

// Bridge is bridge, for tests.
var Bridge = bridge
