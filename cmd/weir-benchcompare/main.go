// Command weir-benchcompare measures Weir side by side with its peers and
// with ceilings on one machine, in one run, and prints one table of
// medians and ratios (docs/benchmarks.md, "Side by side").
//
//	weir-benchcompare run [flags]   the comparison (make bench-compare)
//	weir-benchcompare peer -kind K  one broker, as a child process of run
//
// Every broker runs in its own process (this binary with "peer"): Weir
// through server.Start as `weir serve` starts it, franz-go's kfake in
// memory, with DataDir, and with DataDir+SyncWrites, and the null broker
// (internal/nullbroker) acknowledging at once, after a write, or after a
// group-committed fdatasync. The load comes from `weir bench` in a third
// process, so the CPU time read from /proc/<pid>/stat is the broker's
// alone. Repetitions interleave the targets (A, B, C, A, B, C…) so that
// drift on a shared machine hits all of them alike; the table reports
// medians.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: weir-benchcompare run [flags] | peer -kind KIND -addr ADDR -dir DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "peer":
		err = peerMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want run or peer", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-benchcompare:", err)
		os.Exit(1)
	}
}
