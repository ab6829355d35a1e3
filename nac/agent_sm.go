package nac

// AgentSMConfig configures the agent's SM channel (issue 6; owned by the SM wiring work).
type AgentSMConfig struct{}

func (c *AgentSMConfig) resolve(dir string)              {}
func (c *AgentSMConfig) setDefaults(a *AgentConfig)      {}
func (c *AgentSMConfig) validate(a *AgentConfig) []error { return nil }
