package telemetry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apmtel/apmtel/internal/es"
)

// agentConfigPageSize is Kibana's (single) page size.
const agentConfigPageSize = 1000

// PerAgentConfigSettings lists, for each agent central-configuration
// document, which setting names are configured, split into predefined and
// advanced, and whether the agent reported an error applying it (spec
// kibana-apm-per-agent-config-settings.md). Names only, never values.
// Unlike Kibana it reads every document (a scroll, not the first 1000), skips
// and counts a document without settings instead of failing, and reads a
// missing index as an empty list.
func PerAgentConfigSettings() Task {
	return Task{Name: "per_agent_config_settings", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		out := []any{}
		skipped := 0
		err := scrollAll(ctx, env, env.Indices.AgentConfiguration, func(id string, src json.RawMessage) error {
			item, ok, err := agentConfigItem(src)
			if err != nil {
				return fmt.Errorf("configuration %s: %w", id, err)
			}
			if !ok {
				skipped++
				return nil
			}
			out = append(out, item)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if skipped > 0 {
			env.warn("%d agent configuration document(s) without settings skipped", skipped)
		}
		return Fragment{"per_agent_config_settings": out}, nil
	}}
}

// agentConfigItem classifies one configuration document; ok is false when it has no settings.
func agentConfigItem(src json.RawMessage) (map[string]any, bool, error) {
	var doc struct {
		AgentName *string         `json:"agent_name"`
		Error     json.RawMessage `json:"error"`
		Settings  json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		return nil, false, err
	}
	if len(doc.Settings) == 0 || string(doc.Settings) == "null" {
		return nil, false, nil
	}
	keys, err := objectKeys(doc.Settings)
	if err != nil {
		return nil, false, fmt.Errorf("settings: %w", err)
	}
	agent := ""
	if doc.AgentName != nil {
		agent = *doc.AgentName
	}
	known := knownSettingKeys(agent)
	settings, advanced := []string{}, []string{}
	for _, k := range keys {
		if known[k] {
			settings = append(settings, k)
		} else {
			advanced = append(advanced, k)
		}
	}
	item := map[string]any{
		"has_error":         truthy(doc.Error),
		"settings":          settings,
		"advanced_settings": advanced,
	}
	if doc.AgentName != nil {
		item["agent_name"] = *doc.AgentName
	}
	return item, true, nil
}

// truthy is JavaScript's !!v for a JSON value, Kibana's has_error rule: a
// missing or null value, false, 0 and "" are false; anything else, objects
// and arrays included, is true.
func truthy(raw json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(raw)); s {
	case "", "null", "false", `""`:
		return false
	default:
		var f float64
		if json.Unmarshal(raw, &f) == nil {
			return f != 0
		}
		return true
	}
}

// objectKeys returns a JSON object's keys in the order Kibana's
// Object.keys lists them after JSON.parse: array-index keys ("0", "7",
// "10"; canonical integers below 2^32-1) first in ascending numeric order,
// then the other keys in document order; a repeated key counts once, at its
// first position.
func objectKeys(raw json.RawMessage) ([]string, error) {
	keys, err := documentKeys(raw)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var index, other []string
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if isArrayIndex(k) {
			index = append(index, k)
		} else {
			other = append(other, k)
		}
	}
	slices.SortFunc(index, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	return append(index, other...), nil
}

// isArrayIndex reports whether k is a JavaScript array index: "0", or a
// decimal without leading zero, at most 2^32-2.
func isArrayIndex(k string) bool {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return false
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < 1<<32-1
}

// documentKeys returns a JSON object's keys in document order.
func documentKeys(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not an object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// scrollAll reads every document of index through the scroll API and
// always releases the scroll context.
func scrollAll(ctx context.Context, env Env, index string, each func(id string, src json.RawMessage) error) error {
	_, err := scroll(ctx, env, []string{index}, url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}},
		map[string]any{"size": agentConfigPageSize, "track_total_hits": true, "timeout": es.FormatTimeout(env.SearchTimeout), "sort": []any{"_doc"}},
		agentConfigPageSize, each)
	return err
}
