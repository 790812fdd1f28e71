// Go side of benches/benches/sched.rs: the same workloads on Go's runtime.
// Usage: sched_bench -bench spawn_many|chained_spawn|yield_many|idle_memory|
//
//	wake_latency_spawn|wake_latency_send -procs N -runs R
//
// Prints: RESULT <bench> <procs> <median> <min> (ns/op, bytes/goroutine,
// or µs to child start for wake_latency)
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func spawnMany() float64 {
	const n = 1000000
	t := time.Now()
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
	return float64(time.Since(t).Nanoseconds()) / n
}

func chainStep(n int, done chan struct{}) {
	if n == 0 {
		done <- struct{}{}
		return
	}
	go chainStep(n-1, done)
}

func chainedSpawn() float64 {
	const n = 1000000
	t := time.Now()
	done := make(chan struct{}, 1)
	chainStep(n, done)
	<-done
	return float64(time.Since(t).Nanoseconds()) / n
}

func yieldMany() float64 {
	const g, n = 200, 10000
	t := time.Now()
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
	return float64(time.Since(t).Nanoseconds()) / (g * n)
}

// rss is the resident set size from /proc/self/statm, as the Rust side
// measures it; where that is unreadable, the memory Go has mapped and not
// returned (Sys - HeapReleased).
func rss() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys - m.HeapReleased
}

func idleMemory() float64 {
	const n = 1000000
	runtime.GC()
	before := rss()
	ch := make(chan struct{})
	var started int64
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			<-ch
		}()
	}
	for atomic.LoadInt64(&started) < n {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	per := float64(rss()-before) / n
	close(ch)
	return per
}

// wake_latency: see benches/benches/sched.rs. The parent goroutine makes
// a child runnable (go statement or a send it is parked on), then computes
// until the child has started or wakeCap has passed.
const (
	wakeSamples = 200
	wakeCap     = 20 * time.Millisecond
	wakePause   = time.Millisecond
)

func wakeLatency(send bool) float64 {
	res := make(chan float64)
	go func() {
		base := time.Now()
		var at int64
		stamp := func() { atomic.StoreInt64(&at, int64(time.Since(base))+1) }
		ch := make(chan struct{}, 1)
		if send {
			go func() {
				for range ch {
					stamp()
				}
			}()
		}
		samples := make([]float64, 0, wakeSamples)
		for i := 0; i < wakeSamples; i++ {
			time.Sleep(wakePause)
			atomic.StoreInt64(&at, 0)
			t0 := int64(time.Since(base))
			if send {
				ch <- struct{}{}
			} else {
				go stamp()
			}
			var v int64
			for {
				v = atomic.LoadInt64(&at)
				if v != 0 || int64(time.Since(base)) > t0+int64(wakeCap) {
					break
				}
			}
			for v == 0 {
				time.Sleep(100 * time.Microsecond)
				v = atomic.LoadInt64(&at)
			}
			samples = append(samples, float64(v-1-t0)/1000)
		}
		close(ch)
		sort.Float64s(samples)
		res <- samples[len(samples)/2]
	}()
	return <-res
}

func main() {
	bench := flag.String("bench", "spawn_many", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	fns := map[string]func() float64{
		"spawn_many": spawnMany, "chained_spawn": chainedSpawn,
		"yield_many": yieldMany, "idle_memory": idleMemory,
		"wake_latency_spawn": func() float64 { return wakeLatency(false) },
		"wake_latency_send":  func() float64 { return wakeLatency(true) },
	}
	f, ok := fns[*bench]
	if !ok {
		panic("unknown bench " + *bench)
	}
	n := *runs
	if *bench == "idle_memory" {
		n = 1
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = f()
	}
	sort.Float64s(v)
	fmt.Printf("RESULT %s %d %.1f %.1f\n", *bench, *procs, v[len(v)/2], v[0])
}
