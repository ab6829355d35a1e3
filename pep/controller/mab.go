package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

// ntfExtLocked is NTF_EXT_LOCKED (linux/neighbour.h, NDA_FLAGS_EXT): an FDB entry the bridge
// made for a MAC it will not forward from, on a locked port with MAB on (kernel ≥ 6.2).
const ntfExtLocked = 1 << 1

// isLockedEntry reports whether n is a locked FDB entry of the bridge.
func isLockedEntry(n netlink.Neigh) bool {
	return n.Family == unix.AF_BRIDGE && n.FlagsExt&ntfExtLocked != 0 && len(n.HardwareAddr) == 6 && n.HardwareAddr[0]&1 == 0
}

// watchFDB subscribes to FDB changes and turns locked entries on managed ports into MAB
// requests, after MABDelay.
func (c *Controller) watchFDB(ctx context.Context) error {
	ch, err := c.subscribeFDB(ctx)
	if err != nil {
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-ch:
				if ok {
					if u.Type == unix.RTM_NEWNEIGH && isLockedEntry(u.Neigh) {
						c.lockedMAC(ctx, u.Neigh)
					}
					continue
				}
				// The subscription ended (ENOBUFS after a burst of changes): subscribe again,
				// listing what exists, so no locked MAC is missed.
				for ctx.Err() == nil {
					select {
					case <-ctx.Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
					if ch, err = c.subscribeFDB(ctx); err == nil {
						c.log.Info("fdb subscription renewed")
						break
					}
					c.log.Warn("fdb subscription", "err", err)
				}
			}
		}
	}()
	return nil
}

func (c *Controller) subscribeFDB(ctx context.Context) (<-chan netlink.NeighUpdate, error) {
	ch := make(chan netlink.NeighUpdate, 1024)
	if err := netlink.NeighSubscribeWithOptions(ch, ctx.Done(), netlink.NeighSubscribeOptions{
		ListExisting: true, ReceiveBufferSize: 4 << 20,
		ErrorCallback: func(err error) { c.log.Debug("fdb subscription", "err", err) },
	}); err != nil {
		return nil, fmt.Errorf("controller: fdb subscription: %w", err)
	}
	return ch, nil
}

// lockedMAC starts the MAB delay for a MAC the kernel reports on a managed port, unless it is
// admitted, waiting, held after a failure or speaking 802.1X; MACs per port are capped.
func (c *Controller) lockedMAC(ctx context.Context, n netlink.Neigh) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var portName string
	for _, p := range c.ports {
		if p.index == n.LinkIndex {
			portName = p.name
		}
	}
	if portName == "" {
		return
	}
	mac := slices.Clone(n.HardwareAddr)
	k := mac.String()
	if s := c.sessions[k]; s != nil {
		if s.Port != portName {
			// The MAC holds a session on another port: a copy of it here is spoofed (or a move
			// the old port has not noticed yet); MAB must not hand the session over.
			c.log.Warn("MAC of a session on another port seen here; ignored", "port", portName, "mac", k, "session_port", s.Port)
		}
		return
	}
	now := time.Now()
	if w := c.mab[k]; w != nil {
		if w.timer != nil || w.inflight || now.Before(w.hold) {
			return
		}
		delete(c.mab, k)
	}
	waiting := 0
	for _, w := range c.mab {
		if w.port == portName && (w.timer != nil || w.inflight) {
			waiting++
		}
	}
	if waiting >= c.cfg.MABMaxPerPort {
		c.log.Warn("too many MACs waiting for MAB on the port; ignored", "port", portName, "mac", k)
		return
	}
	w := &mabWait{port: portName}
	c.mab[k] = w
	w.timer = time.AfterFunc(c.cfg.MABDelay, func() {
		c.mu.Lock()
		if c.mab[k] != w || w.timer == nil || w.dot1x {
			c.mu.Unlock()
			return
		}
		w.timer, w.inflight = nil, true
		c.mu.Unlock()
		c.mabRequest(ctx, portName, mac)
	})
	c.log.Debug("unknown MAC on locked port; MAB after the delay", "port", portName, "mac", k, "delay", c.cfg.MABDelay)
}

// mabRequest asks the PDP about mac by MAB and enforces the answer. On a reject or no answer
// the MAC is held (no new MAB request) for the quiet period, and the locked FDB entry is
// deleted so the kernel reports the MAC again afterwards.
func (c *Controller) mabRequest(ctx context.Context, portName string, mac net.HardwareAddr) {
	if ctx.Err() != nil {
		return
	}
	c.st.mabRequests.Add(1)
	log := c.log.With("port", portName, "mac", mac.String(), "method", MethodMAB)
	log.Info("MAB request")
	p := c.nas.MABRequest(c.cfg.Secret, portName, mac)
	reply, err := c.client.Exchange(ctx, p, c.cfg.Auth)
	hold := c.cfg.QuietPeriod
	admitted := false
	switch {
	case err != nil:
		c.st.backendErrs.Add(1)
		c.mu.Lock()
		s := c.sessions[mac.String()]
		if s != nil {
			s.reauthing = false
			s.reauthAt = time.Now().Add(c.cfg.TxPeriod) // try again; the binding holds until Expires
		}
		c.mu.Unlock()
		log.Warn("MAB: PDP unreachable; nothing new admitted", "err", err)
		hold = c.cfg.TxPeriod
	case reply.Code == radius.CodeAccessAccept:
		a, perr := ParseAuthorization(reply)
		if perr != nil {
			log.Error("MAB Access-Accept cannot be enforced", "err", perr)
			c.end(ctx, portName, mac, rfc2866.AcctTerminateCause_Value_UserError, false)
			break
		}
		c.st.mabAccepts.Add(1)
		if c.admit(ctx, portName, mac, MethodMAB, a) == nil && a.Role != RoleDeny {
			admitted = true
		}
	default:
		c.st.mabRejects.Add(1)
		log.Info("MAB rejected")
		c.end(ctx, portName, mac, rfc2866.AcctTerminateCause_Value_UserError, false)
	}
	c.mu.Lock()
	k := mac.String()
	if admitted {
		delete(c.mab, k)
	} else {
		w := c.mab[k]
		if w == nil {
			w = &mabWait{port: portName}
			c.mab[k] = w
		}
		w.inflight, w.hold = false, time.Now().Add(hold)
	}
	c.mu.Unlock()
	if !admitted {
		c.deleteLocked(portName, mac)
	}
}

// retryLocked looks for locked FDB entries of MACs whose hold has passed, in case the kernel
// kept an entry the PEP could not delete (it would never be reported again).
func (c *Controller) retryLocked(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	var due []string
	for k, w := range c.mab {
		if w.timer == nil && !w.inflight && now.After(w.hold) {
			due = append(due, k)
			delete(c.mab, k)
		}
	}
	c.mu.Unlock()
	if len(due) == 0 {
		return
	}
	ns, err := netlink.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return
	}
	for _, n := range ns {
		if isLockedEntry(n) && slices.Contains(due, n.HardwareAddr.String()) {
			c.lockedMAC(ctx, n)
		}
	}
}

// deleteLocked deletes the kernel's locked FDB entries of mac on a port.
func (c *Controller) deleteLocked(portName string, mac net.HardwareAddr) {
	l, err := netlink.LinkByName(portName)
	if err != nil {
		return
	}
	ns, err := netlink.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return
	}
	for _, n := range ns {
		if isLockedEntry(n) && slices.Equal(n.HardwareAddr, mac) {
			del := &netlink.Neigh{LinkIndex: n.LinkIndex, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER, HardwareAddr: n.HardwareAddr, Vlan: n.Vlan}
			if err := netlink.NeighDel(del); err != nil {
				c.log.Debug("delete locked fdb entry", "port", portName, "mac", mac.String(), "err", err)
			}
		}
	}
}
