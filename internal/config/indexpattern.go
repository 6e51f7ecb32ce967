package config

import "fmt"

// MaxIndexPatternLength is Kibana's APM_INDEX_PATTERN_MAX_LENGTH: the
// longest value an APM index setting may have (the whole comma-separated
// list), in characters.
const MaxIndexPatternLength = 1000

// validateIndexPattern refuses an index setting Kibana would refuse for its
// length; the value itself is not repeated in the error (it may be long).
func validateIndexPattern(name, v string) error {
	if n := len([]rune(v)); n > MaxIndexPatternLength {
		return fmt.Errorf("%s: index setting is %d characters long, at most %d are allowed (as in Kibana)", name, n, MaxIndexPatternLength)
	}
	return nil
}
