package nac

// AgentDot1XConfig makes the agent an 802.1X supplicant (issue 5; owned by the agent-link work).
type AgentDot1XConfig struct{}

func (c *AgentDot1XConfig) resolve(dir string) {}
func (c *AgentDot1XConfig) setDefaults()       {}
func (c *AgentDot1XConfig) validate() []error  { return nil }
