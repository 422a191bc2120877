"""Typed, validated stage configuration: one TOML file per stage under ``config/stages/``."""

from config.stage import (
    INTERFACE_ENDPOINT_SERVICES,
    ConfigError,
    EtlConfig,
    HostingConfig,
    MonitoringConfig,
    StageConfig,
    WorkspaceConfig,
    available_stages,
    load_stage,
)

__all__ = [
    "INTERFACE_ENDPOINT_SERVICES",
    "ConfigError",
    "EtlConfig",
    "HostingConfig",
    "MonitoringConfig",
    "StageConfig",
    "WorkspaceConfig",
    "available_stages",
    "load_stage",
]
