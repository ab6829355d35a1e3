package controller

import (
	"context"
	"time"
)

// queueAcct hands a record to the accounting sender without ever blocking: when the queue is
// full the record is dropped and counted.
func (c *Controller) queueAcct(r acctRecord) {
	if c.cfg.Acct == "" {
		return
	}
	select {
	case c.acctQ <- r:
	default:
		c.st.acctDropped.Add(1)
		c.log.Warn("accounting queue full; record dropped", "session", r.SessionID, "status", r.Status.String())
	}
}

// accountingLoop sends the queued records in order, one at a time (the client retransmits).
func (c *Controller) accountingLoop(ctx context.Context) {
	defer c.wg.Done()
	for {
		select {
		case <-ctx.Done():
			// Flush what is queued, briefly.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case r := <-c.acctQ:
					c.sendAcctNow(fctx, r)
				default:
					return
				}
			}
		case r := <-c.acctQ:
			c.sendAcctNow(ctx, r)
		}
	}
}

// sendAcctNow sends one Accounting-Request and waits for its response.
func (c *Controller) sendAcctNow(ctx context.Context, r acctRecord) {
	if c.cfg.Acct == "" || ctx.Err() != nil {
		return
	}
	p := c.nas.AccountingRequest(c.cfg.Secret, r, time.Now())
	if _, err := c.client.Exchange(ctx, p, c.cfg.Acct); err != nil {
		c.st.acctFailed.Add(1)
		c.log.Warn("accounting", "status", r.Status.String(), "session", r.SessionID, "err", err)
		return
	}
	c.st.acctSent.Add(1)
	c.log.Debug("accounting sent", "status", r.Status.String(), "session", r.SessionID, "port", r.Port)
}
