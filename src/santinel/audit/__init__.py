"""The audit trail: IHE BALP-shaped AuditEvents, their hash chain and signed checkpoints."""
