package telemetry

import (
	"context"
	"encoding/json"
	"sort"
	"time"
)

// Saved-object types of Kibana's application usage (kibana_usage_collection
// .../application_usage/saved_objects_types.ts).
const (
	soAppUsageTotals = "application_usage_totals"
	soAppUsageDaily  = "application_usage_daily"
	// mainViewID is MAIN_APP_DEFAULT_VIEW_ID: the app as a whole.
	mainViewID = "main"
)

// appUsageWindows are the rolling windows of application_usage, in days.
var appUsageWindows = []int{7, 30, 90}

// ApplicationUsage reports clicks and minutes on screen of the APM apps and
// their views, as Kibana's application_usage collector does for every app
// (docs/behavioral.md). Its object is stack_stats.kibana.plugins.application_usage.
func ApplicationUsage() Task {
	return Task{Name: "application_usage", Plugin: PluginApplicationUsage, Collect: collectApplicationUsage}
}

// appUsageAttrs are the attributes both types share; daily objects add timestamp.
type appUsageAttrs struct {
	AppID           string   `json:"appId"`
	ViewID          string   `json:"viewId"`
	NumberOfClicks  *float64 `json:"numberOfClicks"`
	MinutesOnScreen *float64 `json:"minutesOnScreen"`
	Timestamp       *string  `json:"timestamp"`
}

type appUsageObject struct {
	id        string
	updatedAt string
	attrs     appUsageAttrs
}

// appViewUsage is one element of Kibana's report (ApplicationViewUsage).
type appViewUsage struct {
	AppID, ViewID                                string
	ClicksTotal, Clicks7, Clicks30, Clicks90     float64
	MinutesTotal, Minutes7, Minutes30, Minutes90 float64
}

// object is the element in Kibana's shape.
func (u *appViewUsage) object() map[string]any {
	return map[string]any{
		"appId": u.AppID, "viewId": u.ViewID,
		"clicks_total": u.ClicksTotal, "clicks_7_days": u.Clicks7, "clicks_30_days": u.Clicks30, "clicks_90_days": u.Clicks90,
		"minutes_on_screen_total": u.MinutesTotal, "minutes_on_screen_7_days": u.Minutes7,
		"minutes_on_screen_30_days": u.Minutes30, "minutes_on_screen_90_days": u.Minutes90,
	}
}

func (u *appViewUsage) add(days int, clicks, minutes float64) {
	switch days {
	case 7:
		u.Clicks7 += clicks
		u.Minutes7 += minutes
	case 30:
		u.Clicks30 += clicks
		u.Minutes30 += minutes
	case 90:
		u.Clicks90 += clicks
		u.Minutes90 += minutes
	}
}

func collectApplicationUsage(ctx context.Context, env Env) (Fragment, error) {
	var totals, daily []appUsageObject
	query := filter(map[string]any{"terms": map[string]any{"type": []any{soAppUsageTotals, soAppUsageDaily}}})
	err := scrollSavedObjects(ctx, env, "application usage", query, []string{"type", "updated_at", soAppUsageTotals, soAppUsageDaily},
		func(id string, src json.RawMessage) error {
			var doc struct {
				Type      string          `json:"type"`
				UpdatedAt string          `json:"updated_at"`
				Totals    json.RawMessage `json:"application_usage_totals"`
				Daily     json.RawMessage `json:"application_usage_daily"`
			}
			if err := json.Unmarshal(src, &doc); err != nil {
				env.warn("saved object %s: %v", id, err)
				return nil
			}
			raw, list := doc.Totals, &totals
			if doc.Type == soAppUsageDaily {
				raw, list = doc.Daily, &daily
			}
			var a appUsageAttrs
			if err := json.Unmarshal(raw, &a); err != nil || a.AppID == "" {
				env.warn("saved object %s: no usable attributes (appId, numberOfClicks, minutesOnScreen)", id)
				return nil
			}
			// Only the APM apps: the attributes are not mapped (dynamic
			// false), so the query cannot select them.
			if !isAPMApp(a.AppID) {
				return nil
			}
			if a.ViewID == "" {
				a.ViewID = mainViewID
			}
			if a.NumberOfClicks == nil || a.MinutesOnScreen == nil {
				env.warn("saved object %s: numberOfClicks or minutesOnScreen missing, counted as 0", id)
			}
			*list = append(*list, appUsageObject{id: id, updatedAt: doc.UpdatedAt, attrs: a})
			return nil
		})
	if err != nil {
		return nil, err
	}
	return rollUpApplicationUsage(env, totals, daily), nil
}

func num(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// rollUpApplicationUsage is Kibana's fetch: the totals objects give
// clicks_total and minutes_on_screen_total; every daily object adds to the
// totals and, when its day is inside a window, to that window.
func rollUpApplicationUsage(env Env, totals, daily []appUsageObject) Fragment {
	type key struct{ app, view string }
	usage := map[key]*appViewUsage{}
	get := func(a appUsageAttrs) *appViewUsage {
		k := key{a.AppID, a.ViewID}
		u, ok := usage[k]
		if !ok {
			u = &appViewUsage{AppID: a.AppID, ViewID: a.ViewID}
			usage[k] = u
		}
		return u
	}
	// Kibana keeps one totals object per app and view (rollTotals writes it
	// under that id); of duplicates its reduce keeps the last one read, not
	// their sum. Oldest first, so the newest is kept.
	sort.SliceStable(totals, func(i, j int) bool {
		if totals[i].updatedAt != totals[j].updatedAt {
			return totals[i].updatedAt < totals[j].updatedAt
		}
		return totals[i].id < totals[j].id
	})
	for _, o := range totals {
		u := get(o.attrs)
		u.ClicksTotal, u.MinutesTotal = num(o.attrs.NumberOfClicks), num(o.attrs.MinutesOnScreen)
	}
	// Sums do not depend on order, but floating-point rounding does: a fixed
	// order gives the same minutes on every run.
	sort.Slice(daily, func(i, j int) bool { return daily[i].id < daily[j].id })
	now := env.Now().UTC()
	for _, o := range daily {
		u := get(o.attrs)
		clicks, minutes := num(o.attrs.NumberOfClicks), num(o.attrs.MinutesOnScreen)
		u.ClicksTotal += clicks
		u.MinutesTotal += minutes
		// Kibana's moment(timestamp): a missing (or null) timestamp reads as
		// now, so the object counts in every window; an unreadable one is an
		// invalid date and in no window.
		ts := now
		if o.attrs.Timestamp != nil {
			var err error
			if ts, err = time.Parse(time.RFC3339Nano, *o.attrs.Timestamp); err != nil {
				env.warn("saved object %s: timestamp %q is not a date; counted in the totals only", o.id, *o.attrs.Timestamp)
				continue
			}
		}
		// The window starts are now minus 7/30/90 days in UTC; Kibana
		// subtracts days in its server's local time (docs/parity.md).
		for _, days := range appUsageWindows {
			if !ts.Before(now.AddDate(0, 0, -days)) {
				u.add(days, clicks, minutes)
			}
		}
	}
	// transformByApplicationViews: one entry per app that has its main
	// view, with its other views (an app without a main entry is left out).
	out := Fragment{}
	for k, u := range usage {
		if k.view != mainViewID {
			continue
		}
		var views []*appViewUsage
		for vk, v := range usage {
			if vk.app == k.app && vk.view != mainViewID {
				views = append(views, v)
			}
		}
		sort.Slice(views, func(i, j int) bool { return views[i].ViewID < views[j].ViewID })
		vs := make([]any, len(views))
		for i, v := range views {
			vs[i] = v.object()
		}
		entry := u.object()
		entry["views"] = vs
		out[k.app] = entry
	}
	return out
}
