"""Track CINNOX outbound-SMS delivery: receive TDRs, store them, alert on failures."""
