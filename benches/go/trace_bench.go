// Go side of benches/src/bin/trace_cost.rs: spawn_many, yield_many and
// ping_pong with runtime/trace off or on (-trace), to compare what tracing
// costs Go with what it costs gmp. With -trace each run starts a trace
// into a temp file and stops it after the workload; the time includes
// trace.Stop (which writes out what is buffered).
// Usage: trace_bench -bench spawn_many|yield_many|ping_pong -procs N -runs R [-trace]
// Prints: RESULT <bench> <procs> <median> <min> (ns/op)
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/trace"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func spawnMany() {
	const n = 100000
	done := make(chan struct{}, 1)
	var left int64 = n
	for i := 0; i < n; i++ {
		go func() {
			if atomic.AddInt64(&left, -1) == 0 {
				done <- struct{}{}
			}
		}()
	}
	<-done
}

func yieldMany() {
	const g, n = 200, 500
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			for j := 0; j < n; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
}

func pingPong() {
	const n = 100000
	a, b := make(chan uint64), make(chan uint64)
	go func() {
		for v := range a {
			b <- v + 1
		}
	}()
	for i := uint64(0); i < n; i++ {
		a <- i
		<-b
	}
	close(a)
}

func main() {
	bench := flag.String("bench", "spawn_many", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs")
	traced := flag.Bool("trace", false, "run under runtime/trace")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	type w struct {
		f  func()
		ops float64
	}
	ws := map[string]w{
		"spawn_many": {spawnMany, 100000},
		"yield_many": {yieldMany, 200 * 500},
		"ping_pong":  {pingPong, 100000},
	}
	wl, ok := ws[*bench]
	if !ok {
		panic("unknown bench " + *bench)
	}
	v := make([]float64, *runs)
	for i := range v {
		var f *os.File
		if *traced {
			var err error
			if f, err = os.CreateTemp("", "gmp-go-trace-*.out"); err != nil {
				panic(err)
			}
		}
		t := time.Now()
		if f != nil {
			if err := trace.Start(f); err != nil {
				panic(err)
			}
		}
		wl.f()
		if f != nil {
			trace.Stop()
		}
		v[i] = float64(time.Since(t).Nanoseconds()) / wl.ops
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	sort.Float64s(v)
	fmt.Printf("RESULT %s %d %.1f %.1f\n", *bench, *procs, v[len(v)/2], v[0])
}
