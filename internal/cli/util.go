package cli

import "encoding/json"

// rawJSON is a request body that is already JSON.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
