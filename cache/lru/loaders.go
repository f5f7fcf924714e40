package lru

import "time"

// linger is how long a loader goroutine waits for the next load before it
// ends: long enough to stay through a reader's pauses, so that the deep
// stack a load grows (decryption, decompression) is grown once.
const linger = time.Second

// loaders runs a cache's loads: each on a goroutine of its own by default;
// with a limit (LimitLoads), at most limit at a time, on goroutines that
// wait a while for the next one, loads callers wait for (reads) before the
// read-ahead Prefetch queued (aheads). Every field is guarded by Cache.mu.
type loaders[K comparable, V any] struct {
	limit   int
	reads   []*call[K, V]
	aheads  []*call[K, V]
	running int           // goroutines, idle ones included
	idle    int           // goroutines waiting for a load
	wake    chan struct{} // one token for each idle goroutine woken
}

// LimitLoads makes at most n loads run at once (n <= 0: no limit, a
// goroutine for each load, the default). Further loads wait in order,
// those a caller waits for (GetOrLoad) before read-ahead (Prefetch). Call
// it before any load.
func (c *Cache[K, V]) LimitLoads(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loaders.limit = n
	c.loaders.wake = make(chan struct{}, max(n, 0))
}

// start runs cl's load, or queues it; c.mu must be held.
func (l *loaders[K, V]) start(c *Cache[K, V], cl *call[K, V], ahead bool) {
	if l.limit <= 0 {
		go c.runLoad(cl)
		return
	}
	if ahead {
		cl.queued = true
		l.aheads = append(l.aheads, cl)
	} else {
		l.reads = append(l.reads, cl)
	}
	switch {
	case l.idle > 0:
		l.idle--
		l.wake <- struct{}{}
	case l.running < l.limit:
		l.running++
		go l.work(c)
	}
}

// hurry moves cl, queued as read-ahead, to the loads callers wait for;
// c.mu must be held.
func (l *loaders[K, V]) hurry(cl *call[K, V]) {
	for i, q := range l.aheads {
		if q == cl {
			l.aheads = append(l.aheads[:i], l.aheads[i+1:]...)
			break
		}
	}
	cl.queued = false
	l.reads = append(l.reads, cl)
}

// next takes the next queued load, reads first; c.mu must be held.
func (l *loaders[K, V]) next() (*call[K, V], bool) {
	var cl *call[K, V]
	switch {
	case len(l.reads) > 0:
		cl, l.reads = l.reads[0], l.reads[1:]
	case len(l.aheads) > 0:
		cl, l.aheads = l.aheads[0], l.aheads[1:]
		cl.queued = false
	default:
		return nil, false
	}
	return cl, true
}

// work runs queued loads until none has come for linger.
func (l *loaders[K, V]) work(c *Cache[K, V]) {
	timer := time.NewTimer(linger)
	defer timer.Stop()
	c.mu.Lock()
	for {
		if cl, ok := l.next(); ok {
			c.mu.Unlock()
			c.runLoad(cl)
			c.mu.Lock()
			continue
		}
		l.idle++
		c.mu.Unlock()
		timer.Reset(linger)
		select {
		case <-l.wake:
			c.mu.Lock()
			continue
		case <-timer.C:
		}
		c.mu.Lock()
		select {
		case <-l.wake: // woken as the timer fired
			continue
		default:
		}
		l.idle--
		l.running--
		c.mu.Unlock()
		return
	}
}
