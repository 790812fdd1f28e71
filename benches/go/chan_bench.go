// Go side of benches/benches/chan.rs.
// Usage: chan_bench -bench ping_pong|chan_mpmc|select_fanin|idle_chan_memory -procs N -runs R
// Prints: RESULT <bench> <procs> <median> <min> (ns/op, or bytes/goroutine)
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

func pingPong() float64 {
	const n = 1000000
	a, b := make(chan uint64), make(chan uint64)
	t := time.Now()
	go func() {
		for v := range a {
			b <- v
		}
	}()
	done := make(chan struct{})
	go func() {
		for i := uint64(0); i < n; i++ {
			a <- i
			<-b
		}
		close(a)
		close(done)
	}()
	<-done
	return float64(time.Since(t).Nanoseconds()) / n
}

func mpmc() float64 {
	const n = 10000000
	ch := make(chan uint64, 1024)
	t := time.Now()
	var pw, cw sync.WaitGroup
	per := uint64(n / 4)
	for p := 0; p < 4; p++ {
		pw.Add(1)
		go func() {
			for i := uint64(0); i < per; i++ {
				ch <- i
			}
			pw.Done()
		}()
	}
	var mu sync.Mutex
	var sum uint64
	for c := 0; c < 4; c++ {
		cw.Add(1)
		go func() {
			var s uint64
			for v := range ch {
				s += v
			}
			mu.Lock()
			sum += s
			mu.Unlock()
			cw.Done()
		}()
	}
	pw.Wait()
	close(ch)
	cw.Wait()
	if sum != 4*(per*(per-1)/2) {
		panic("lost values")
	}
	return float64(time.Since(t).Nanoseconds()) / n
}

func fanin() float64 {
	const n = 1000000
	per := n / 8
	var cs [8]chan uint64
	t := time.Now()
	for i := range cs {
		cs[i] = make(chan uint64)
		go func(c chan uint64) {
			for j := 0; j < per; j++ {
				c <- uint64(j)
			}
		}(cs[i])
	}
	for got := 0; got < n; got++ {
		select {
		case <-cs[0]:
		case <-cs[1]:
		case <-cs[2]:
		case <-cs[3]:
		case <-cs[4]:
		case <-cs[5]:
		case <-cs[6]:
		case <-cs[7]:
		}
	}
	return float64(time.Since(t).Nanoseconds()) / n
}

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

// idleChanMemory: RSS growth per goroutine, 1,000,000 goroutines each
// parked on a receive from its own capacity-1 channel. Measured once per
// process (a second run would reuse the first one's freed memory); later
// runs repeat the value.
var idleChanOnce float64

func idleChanMemory() float64 {
	if idleChanOnce != 0 {
		return idleChanOnce
	}
	const n = 1000000
	runtime.GC()
	before := rss()
	chans := make([]chan uint64, n)
	var started int64
	for i := range chans {
		c := make(chan uint64, 1)
		chans[i] = c
		go func() {
			atomic.AddInt64(&started, 1)
			<-c
		}()
	}
	for atomic.LoadInt64(&started) < n {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	idleChanOnce = float64(rss()-before) / n
	for _, c := range chans {
		close(c)
	}
	return idleChanOnce
}

func main() {
	bench := flag.String("bench", "ping_pong", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	fns := map[string]func() float64{"ping_pong": pingPong, "chan_mpmc": mpmc, "select_fanin": fanin,
		"idle_chan_memory": idleChanMemory}
	f, ok := fns[*bench]
	if !ok {
		panic("unknown bench " + *bench)
	}
	v := make([]float64, *runs)
	for i := range v {
		v[i] = f()
	}
	sort.Float64s(v)
	fmt.Printf("RESULT %s %d %.1f %.1f\n", *bench, *procs, v[len(v)/2], v[0])
}
