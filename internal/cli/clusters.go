package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
)

// clusterSet is the process's cluster set: the clusters file's
// (APMTEL_CLUSTERS_FILE) or the one APMTEL_SOURCE_* cluster.
func clusterSet(cfg config.Config) (fleet.Set, error) {
	src, err := fleet.FromConfig(cfg, zerolog.Nop())
	if err != nil {
		return fleet.Set{}, err
	}
	return src.Current(), nil
}

// pickClusters resolves --cluster names against set, in the order given,
// each once. No name picks the only cluster of a one-cluster set; with
// several, --cluster is required. An unknown name is a usage error with the
// closest configured name.
func pickClusters(set fleet.Set, names []string) ([]fleet.Cluster, error) {
	if len(names) == 0 {
		if set.Len() == 1 {
			return set.Clusters(), nil
		}
		return nil, usageErrorf("%d clusters are configured: name one with --cluster NAME (%s)", set.Len(), listNames(set.Names()))
	}
	var out []fleet.Cluster
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		c, ok := set.Get(n)
		if !ok {
			return nil, unknownCluster(set, n)
		}
		out = append(out, c)
	}
	return out, nil
}

// unknownCluster is the usage error of a --cluster name not in set.
func unknownCluster(set fleet.Set, name string) error {
	best, bestD := "", -1
	for _, n := range set.Names() {
		d := levenshtein.ComputeDistance(name, n)
		if bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	// A suggestion farther than half the name is a guess, not a typo.
	if best != "" && bestD <= max(2, len(name)/2) {
		return usageErrorf("--cluster: unknown cluster %q (did you mean %q?)", name, best)
	}
	return usageErrorf("--cluster: unknown cluster %q (configured: %s)", name, listNames(set.Names()))
}

// listNames shows at most 10 names.
func listNames(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(", … %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// clusterConfig is cfg as a command acting on cluster c reads it: c's name
// scopes the keys and job ids; from a clusters file, c's connection, cap,
// indices and Kibana version replace the deployment's (credentials read
// from their files now). The one cluster of APMTEL_SOURCE_* is cfg itself.
func clusterConfig(cfg config.Config, set fleet.Set, c fleet.Cluster) (config.Config, error) {
	cfg.SourceName = c.Name
	if set.Origin() != fleet.OriginFile {
		return cfg, nil
	}
	cfg.Indices = c.IndicesFrom(cfg.Indices)
	cfg.SearchConcurrency = c.Cap(cfg.SearchConcurrency)
	cfg.KibanaVersion = c.Version(cfg.KibanaVersion)
	cfg.Source = config.Cluster{URLs: c.URLs, Username: c.Username, CACert: c.CACert, Insecure: c.Insecure}
	if !c.Enabled {
		return cfg, nil
	}
	creds, err := c.Credentials()
	if err != nil {
		return cfg, err
	}
	cfg.Source.APIKey, cfg.Source.Username, cfg.Source.Password = creds.APIKey, creds.Username, creds.Password
	return cfg, nil
}

// oneCluster is the configuration of the cluster a single-cluster command
// (runs, snapshot, cancel, upload, preview) acts on: --cluster NAME, or the
// only one.
func oneCluster(e *env, name string) (config.Config, error) {
	set, err := clusterSet(e.cfg)
	if err != nil {
		return e.cfg, err
	}
	var names []string
	if name != "" {
		names = []string{name}
	}
	cs, err := pickClusters(set, names)
	if err != nil {
		return e.cfg, err
	}
	return clusterConfig(e.cfg, set, cs[0])
}

// clusterFlagHelp is the help of --cluster on the single-cluster commands.
const clusterFlagHelp = "the cluster of the clusters file to act on (not needed with one cluster)"

// addClusterFlag adds --cluster NAME to a single-cluster command.
func addClusterFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVar(p, "cluster", "", clusterFlagHelp)
}

// clustersOpts are the clusters command's own flags.
type clustersOpts struct{ asJSON bool }

func clustersCommand() command {
	o := &clustersOpts{}
	return command{name: "clusters", summary: "one row per configured cluster: enabled, last run, last success, next due, backoff, last error",
		groups: []string{gRedis, gLogging, gHistory, gSource, gSchedule, gFleet},
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&o.asJSON, "json", false, "print one JSON array of the rows")
		},
		run: func(e *env, _ []string) error { return runClusters(e, o) }}
}

func runClusters(e *env, o *clustersOpts) error {
	cfg := e.cfg
	set, err := clusterSet(cfg)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "clusters")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rd := fleetstatus.Reader{Redis: rt.rdb, Prefix: cfg.KeyPrefix, Depth: cfg.HistoryLimit}
	states, err := rd.Read(ctx, set.Names())
	if err != nil {
		return err
	}
	now := time.Now()
	rows := fleetstatus.Rows(set, states, fleetstatus.Schedule{Interval: cfg.Interval, Spread: cfg.Fleet.Spread(cfg.Interval)}, now)
	if o.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CLUSTER\tENABLED\tLAST RUN\tSTATUS\tUPLOAD\tLAST SUCCESS\tNEXT DUE\tBACKOFF UNTIL\tERROR\n")
	for _, r := range rows {
		enabled := "yes"
		if !r.Enabled {
			enabled = "no"
		}
		last, status, upload := "-", "-", "-"
		if r.LastRun != nil {
			last, status, upload = r.LastRun.ID, string(r.LastRun.Status), r.LastRun.Upload
			if r.LastRun.Outcome != "" {
				status += " (" + string(r.LastRun.Outcome) + ")"
			}
		}
		errText := r.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, enabled, last, status, upload,
			timeCell(r.LastSuccessAt), timeCell(r.NextDueAt), timeCell(r.BackoffUntil), oneLineText(errText))
	}
	return tw.Flush()
}

func timeCell(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func oneLineText(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// completeClusters completes --cluster with the names in the clusters file
// (APMTEL_CLUSTERS_FILE or --clusters-file); nothing without one.
func completeClusters(lookup func(string) (string, bool)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		cfg, err := config.Load(cmd.Flags(), lookup, gFleet)
		if err != nil || cfg.ClustersFile == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		set, err := fleet.Load(cfg.ClustersFile)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return matching(set.Names(), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
