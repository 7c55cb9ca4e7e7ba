package httpapi

import (
	"context"
	"sync"
)

// accountLocks serializes, on this node, the writes of one GigaWallet account that read the
// account and then propose what they read: an invoice takes the account's next key index, a
// payout its free outputs and next change index. Two at once read the same state and propose
// the same index; the shard applies one and refuses the other as stale, which then reads again
// and retries. Under a shop's checkouts or an exchange's withdrawals (30 at once on one
// account) the retries ran out and the requests failed. Held per account, they follow one
// another instead, one consensus round each. Requests that reach other nodes still race; the
// retries cover that.
type accountLocks struct {
	mu   sync.Mutex
	held map[string]*accountLock
}

type accountLock struct {
	token chan struct{} // holds one value while the lock is held
	refs  int           // requests holding or waiting for it
}

// lock waits for the account's lock until ctx ends; unlock releases it (exactly once).
func (l *accountLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*accountLock{}
	}
	a := l.held[key]
	if a == nil {
		a = &accountLock{token: make(chan struct{}, 1)}
		l.held[key] = a
	}
	a.refs++
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		if a.refs--; a.refs == 0 {
			delete(l.held, key)
		}
		l.mu.Unlock()
	}
	select {
	case a.token <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-a.token
				forget()
			})
		}, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}
