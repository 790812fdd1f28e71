// Go side of benches/benches/timer.rs: a select over a ready channel and
// time.After(1h), a million times. Before Go 1.23 every unfired After
// timer stays in the heap until it fires, so RSS grows with the loop.
// Usage: timer_bench -bench timer_churn|timer_churn_rss -procs N -runs R
// Prints: RESULT <bench> <procs> <median> <min> (ns/iteration, or bytes of
// RSS growth between iteration 1,000 and the end)
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

const n = 1000000

func rss() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * 4096
}

// churn returns ns per iteration and the RSS growth after iteration 1000.
func churn() (float64, float64) {
	c := make(chan int, 1)
	var base float64
	t := time.Now()
	for i := 0; i < n; i++ {
		c <- i
		select {
		case v := <-c:
			if v != i {
				panic("wrong value")
			}
		case <-time.After(time.Hour):
			panic("the timer fired")
		}
		if i == 1000 {
			base = rss()
		}
	}
	ns := float64(time.Since(t).Nanoseconds()) / n
	return ns, rss() - base
}

func main() {
	bench := flag.String("bench", "timer_churn", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	var v []float64
	for r := 0; r < *runs; r++ {
		ns, grow := churn()
		if *bench == "timer_churn_rss" {
			v = append(v, grow)
		} else {
			v = append(v, ns)
		}
		runtime.GC()
	}
	sort.Float64s(v)
	fmt.Printf("RESULT %s %d %.1f %.1f\n", *bench, *procs, v[len(v)/2], v[0])
}
