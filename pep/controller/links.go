package controller

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// portLink is a bridge port as listed at start.
type portLink struct {
	name  string
	index int
	up    bool
}

// linkEvent is a link change that matters to the controller.
type linkEvent struct {
	name    string
	index   int
	master  int
	up      bool
	deleted bool
}

func linkByName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("%s is a %s, not a bridge", name, l.Type())
	}
	return l, nil
}

func linkUp(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown && a.OperState != netlink.OperLowerLayerDown
}

// bridgePorts lists the ports of the bridge with index br.
func bridgePorts(br int) ([]portLink, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("controller: list links: %w", err)
	}
	var out []portLink
	for _, l := range ls {
		a := l.Attrs()
		if a.MasterIndex == br {
			out = append(out, portLink{name: a.Name, index: a.Index, up: linkUp(a)})
		}
	}
	return out, nil
}

// subscribeLinks delivers link changes until ctx ends.
func subscribeLinks(ctx context.Context, listExisting bool) (<-chan linkEvent, error) {
	ch := make(chan netlink.LinkUpdate, 256)
	if err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback:     func(error) {}, // the channel closes; Run subscribes again
		ReceiveBufferSize: 4 << 20,
		ListExisting:      listExisting,
	}); err != nil {
		return nil, fmt.Errorf("controller: link subscription: %w", err)
	}
	out := make(chan linkEvent, 256)
	go func() {
		defer close(out)
		for u := range ch {
			a := u.Link.Attrs()
			ev := linkEvent{name: a.Name, index: a.Index, master: a.MasterIndex, up: linkUp(a), deleted: u.Header.Type == unix.RTM_DELLINK}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
