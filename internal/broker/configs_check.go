package broker

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validators of topic config values, one per rule Kafka's LogConfig
// applies. Each error names the allowed values; ValidateConfig prefixes
// the config name. Kafka trims numbers, booleans and list items before
// parsing them, and so do these.

// intRange accepts integers in [lo, hi]. Use math.MaxInt32 as hi for INT
// configs and math.MaxInt64 for LONG ones: Kafka refuses an INT value that
// does not fit in 32 bits.
func intRange(lo, hi int64) func(string) error {
	var want string
	switch {
	case lo == math.MinInt64 && hi == math.MaxInt64:
		want = "any 64-bit integer"
	case hi == math.MaxInt64:
		want = fmt.Sprintf("an integer of at least %d", lo)
	case hi == math.MaxInt32:
		want = fmt.Sprintf("a 32-bit integer of at least %d", lo)
	default:
		want = fmt.Sprintf("an integer from %d to %d", lo, hi)
	}
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer (want %s)", v, want)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range (want %s)", n, want)
		}
		return nil
	}
}

// atLeast is intRange(lo, hi) for a LONG config.
func atLeast(lo int64) func(string) error { return intRange(lo, math.MaxInt64) }

// intAtLeast is intRange(lo, hi) for an INT config.
func intAtLeast(lo int64) func(string) error { return intRange(lo, math.MaxInt32) }

// gzipLevel accepts 1 to 9, or -1 for the codec's default (Kafka's
// CompressionType.GZIP level validator).
func gzipLevel(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || (n < 1 || n > 9) && n != -1 {
		return fmt.Errorf("%q is out of range (want an integer from 1 to 9, or -1)", v)
	}
	return nil
}

// ratio accepts a decimal number in [lo, hi].
func ratio(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || f < lo || f > hi {
			return fmt.Errorf("%q is out of range (want a number from %g to %g)", v, lo, hi)
		}
		return nil
	}
}

// boolean accepts true or false in any case, as Kafka parses booleans.
func boolean(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "true") || strings.EqualFold(strings.TrimSpace(v), "false") {
		return nil
	}
	return fmt.Errorf("%q is not a boolean (want true or false)", v)
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vals, v) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

// listOf accepts a comma-separated list of the given values, in any order.
func listOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if !slices.Contains(vals, strings.TrimSpace(p)) {
				return fmt.Errorf("%q is not a list of %s", v, strings.Join(vals, ", "))
			}
		}
		return nil
	}
}

var throttledReplica = regexp.MustCompile(`^([0-9]+:[0-9]+)?$`)

// throttledReplicas accepts Kafka's replication throttle lists: "*", or
// partition:broker pairs separated by commas (the empty list included).
func throttledReplicas(v string) error {
	if strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, p := range strings.Split(v, ",") {
		if !throttledReplica.MatchString(strings.TrimSpace(p)) {
			return fmt.Errorf("%q is not a replica list (want * or partition:broker,partition:broker,...)", v)
		}
	}
	return nil
}

// messageFormatReleases lists the releases message.format.version names,
// each with its number of inter-broker protocol versions (IV0, IV1, ...; 0
// for releases named without them), as Kafka 3.9's MetadataVersion does.
var messageFormatReleases = []struct {
	release string
	ivs     int
}{
	{"0.8.0", 0}, {"0.8.1", 0}, {"0.8.2", 0}, {"0.9.0", 0},
	{"0.10.0", 2}, {"0.10.1", 3}, {"0.10.2", 1}, {"0.11.0", 3},
	{"1.0", 1}, {"1.1", 1}, {"2.0", 2}, {"2.1", 3}, {"2.2", 2}, {"2.3", 2}, {"2.4", 2},
	{"2.5", 1}, {"2.6", 1}, {"2.7", 3}, {"2.8", 2}, {"3.0", 2}, {"3.1", 1}, {"3.2", 1},
	{"3.3", 4}, {"3.4", 1}, {"3.5", 3}, {"3.6", 3}, {"3.7", 5}, {"3.8", 1}, {"3.9", 1},
}

// messageFormatVersion accepts what Kafka's MetadataVersionValidator
// does: a release ("2.8"), optionally with its protocol version
// ("2.8-IV1"); digits past the release ("2.8.2", "0.10.0.1") are ignored.
func messageFormatVersion(v string) error {
	key := v
	segs := strings.Split(v, ".")
	n := 2
	if strings.HasPrefix(v, "0.") {
		n = 3
	}
	if len(segs) > n {
		key = strings.Join(segs[:n], ".")
	}
	release, iv, hasIV := strings.Cut(key, "-IV")
	for _, r := range messageFormatReleases {
		if r.release != release {
			continue
		}
		if !hasIV {
			return nil
		}
		if i, err := strconv.Atoi(iv); err == nil && i >= 0 && i < r.ivs && iv == strconv.Itoa(i) {
			return nil
		}
	}
	return fmt.Errorf("%q is not a Kafka version (want a release from 0.8.0 to 3.9, such as 3.0 or 3.0-IV1)", v)
}

// checkCombined applies Kafka's checks across configs to a topic's
// explicit configs next (prev: the ones they replace, nil on create),
// with defaults filled in from the broker.
func (b *Broker) checkCombined(prev, next map[string]string) error {
	num := func(name string) int64 { return b.effectiveInt(next, name) }
	on := func(set map[string]string, name string) bool {
		return strings.EqualFold(strings.TrimSpace(b.effective(set, name)), "true")
	}
	if lo, hi := num("min.compaction.lag.ms"), num("max.compaction.lag.ms"); lo > hi {
		return fmt.Errorf("%w: min.compaction.lag.ms (%d) must not exceed max.compaction.lag.ms (%d)", ErrInvalidConfig, lo, hi)
	}
	if !on(next, "remote.storage.enable") {
		if prev != nil && on(prev, "remote.storage.enable") && !on(next, "remote.log.delete.on.disable") {
			return fmt.Errorf("%w: remote.storage.enable can be turned off only with remote.log.delete.on.disable=true "+
				"(or keep the remote data read-only with remote.log.copy.disable=true)", ErrInvalidConfig)
		}
		return nil
	}
	if b.opts.Remote == nil && (prev == nil || !on(prev, "remote.storage.enable")) {
		// As Kafka refuses it while remote.log.storage.system.enable is
		// off; a topic tiered before a restart without --archive keeps
		// its setting (its archive is then not read or written).
		return fmt.Errorf("%w: remote.storage.enable=true needs tiered storage on the node, which is off "+
			"(start weir serve with --archive URL)", ErrInvalidConfig)
	}
	if strings.Contains(b.effective(next, "cleanup.policy"), "compact") {
		return fmt.Errorf("%w: remote.storage.enable is not supported with cleanup.policy=compact", ErrInvalidConfig)
	}
	copyOff := on(next, "remote.log.copy.disable")
	for _, pair := range [][2]string{{"local.retention.bytes", "retention.bytes"}, {"local.retention.ms", "retention.ms"}} {
		local, total := num(pair[0]), num(pair[1])
		if local == -2 {
			continue // follows the total
		}
		switch {
		case copyOff && local != total:
			return fmt.Errorf("%w: with remote.log.copy.disable=true, %s (%d) must equal %s (%d)", ErrInvalidConfig, pair[0], local, pair[1], total)
		case total < 0:
		case local == -1:
			return fmt.Errorf("%w: %s must not be -1 while %s is %d", ErrInvalidConfig, pair[0], pair[1], total)
		case local > total:
			return fmt.Errorf("%w: %s (%d) must not exceed %s (%d)", ErrInvalidConfig, pair[0], local, pair[1], total)
		}
	}
	return nil
}
