package nac

// SMListenConf configures the PDP's SM-DTLS listener (issue 6; owned by the SM wiring work).
type SMListenConf struct{}

func (c *SMListenConf) resolve(dir string)       {}
func (c *SMListenConf) setDefaults(p *PDPConfig) {}
func (c *SMListenConf) validate() []error        { return nil }
