//! The one table of MCP clients: where each keeps its server configs on
//! Linux, macOS and Windows, in which file format and document shape, and how
//! its processes are named (to attribute a running server to its launcher).
//!
//! Adding a client is adding one entry to [`CLIENTS`].

/// Operating-system path conventions, as a bit mask.
pub type OsMask = u8;
pub const LINUX: OsMask = 1;
pub const MACOS: OsMask = 2;
pub const WINDOWS: OsMask = 4;
pub const ALL_OS: OsMask = LINUX | MACOS | WINDOWS;
const UNIX: OsMask = LINUX | MACOS;

/// The conventions of the OS this binary runs on.
pub fn host_os() -> OsMask {
    if cfg!(target_os = "macos") {
        MACOS
    } else if cfg!(windows) {
        WINDOWS
    } else {
        LINUX
    }
}

/// What a relative path in the table is resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `HOME` / `USERPROFILE`.
    Home,
    /// `XDG_CONFIG_HOME`, default `~/.config`.
    XdgConfig,
    /// `~/Library/Application Support`.
    MacAppSupport,
    /// `%APPDATA%`, default `~\AppData\Roaming`.
    AppData,
    /// `%LOCALAPPDATA%`, default `~\AppData\Local`.
    LocalAppData,
    /// `$CLAUDE_CONFIG_DIR` (only when set).
    ClaudeConfigDir,
    /// `$CODEX_HOME`, default `~/.codex`.
    CodexHome,
    /// `$OPENCODE_CONFIG`: a file path (only when set).
    OpencodeConfig,
    /// A machine-wide path under the system root (`/` on this machine).
    System,
    /// A project root (from `--project`, Claude Code's `projects` map, or
    /// editor workspace storage).
    ProjectRoot,
}

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, tolerant of comments and trailing commas.
    Json,
    Yaml,
    Toml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}

/// Where the servers live inside a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `mcpServers{name:{...}}`.
    McpServers,
    /// `mcpServers{...}`, or a flat `{name:{...}}` (Claude Code plugin `.mcp.json`).
    McpServersOrFlat,
    /// `servers{...}` (VS Code `mcp.json`, JetBrains Copilot), also `mcpServers`.
    Servers,
    /// VS Code `settings.json`: `mcp.servers` nested or as a dotted key.
    VsCodeSettings,
    /// `*.code-workspace`: `settings` holding VS Code settings.
    CodeWorkspace,
    /// `.devcontainer/devcontainer.json`: `customizations.vscode.mcp.servers`.
    Devcontainer,
    /// `~/.claude.json`: `mcpServers` (user scope) + `projects[dir].mcpServers` (local scope).
    ClaudeCodeUser,
    /// Kiro: `mcpServers` + `powers.mcpServers`.
    Kiro,
    /// Codex TOML: `[mcp_servers.<name>]`.
    Codex,
    /// opencode: `mcp{name:{type:local|remote,...}}`.
    Opencode,
    /// Zed: `context_servers`.
    Zed,
    /// Continue YAML: `mcpServers: [{name,...}]`.
    ContinueYaml,
    /// Continue legacy JSON: `experimental.modelContextProtocolServers[{transport}]`.
    ContinueJson,
    /// Goose YAML: `extensions{name:{cmd,args,envs,type,enabled,uri}}`.
    Goose,
    /// Crush: `mcp{name:{type,command,args,env,url,headers,disabled}}`.
    Crush,
    /// Docker MCP Toolkit `registry.yaml`: `registry{name:{ref}}` (servers run by the gateway).
    DockerRegistry,
    /// Claude Code plugin manifest `plugin.json`: `mcpServers` inline, or a
    /// path (or list of paths) relative to the plugin root naming files of
    /// servers.
    ClaudePlugin,
    /// Claude Desktop extension (`.mcpb`/`.dxt`) `manifest.json`: one server,
    /// `server.mcp_config`, or `server.type` + `entry_point`.
    McpbManifest,
    /// Continue `mcpServers/*.json` block: `mcpServers` (map or list), one
    /// server object, or a flat `{name:{...}}`.
    ContinueBlock,
}

/// Scope of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    User,
    /// Claude Code `projects[dir]` entries in `~/.claude.json`.
    Local,
    Project,
    /// Machine-wide, administrator-managed.
    Managed,
    Plugin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Local => "local",
            Scope::Project => "project",
            Scope::Managed => "managed",
            Scope::Plugin => "plugin",
        }
    }
}

/// One candidate file. `rel` uses `/`; a `*` component matches one directory
/// entry, `**` any depth (bounded), `{a,b}` alternatives in one component.
#[derive(Debug, Clone, Copy)]
pub struct PathRule {
    pub os: OsMask,
    pub base: Base,
    pub rel: &'static str,
    pub format: Format,
    pub shape: Shape,
    pub scope: Scope,
}

#[derive(Debug)]
pub struct Client {
    /// Stable id, used in server ids and SARIF URIs.
    pub id: &'static str,
    pub name: &'static str,
    pub paths: &'static [PathRule],
    /// Executable names (argv[0] / comm / node script basename, lower case)
    /// that identify this client as the parent of a server process.
    pub process_names: &'static [&'static str],
}

const fn p(
    os: OsMask,
    base: Base,
    rel: &'static str,
    format: Format,
    shape: Shape,
    scope: Scope,
) -> PathRule {
    PathRule {
        os,
        base,
        rel,
        format,
        shape,
        scope,
    }
}

use Base::*;
use Format::{Json, Toml, Yaml};
use Scope::{Managed, Plugin, Project, User};
use Shape::*;

/// Every known client, in report order.
pub static CLIENTS: &[Client] = &[
    Client {
        id: "claude-desktop",
        name: "Claude Desktop",
        paths: &[
            p(
                MACOS,
                MacAppSupport,
                "Claude/claude_desktop_config.json",
                Json,
                McpServers,
                User,
            ),
            // Unofficial Linux builds use either case.
            p(
                LINUX,
                XdgConfig,
                "Claude/claude_desktop_config.json",
                Json,
                McpServers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "claude/claude_desktop_config.json",
                Json,
                McpServers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Claude/claude_desktop_config.json",
                Json,
                McpServers,
                User,
            ),
            // Installed extensions (`.mcpb`, formerly `.dxt`), unpacked.
            p(
                MACOS,
                MacAppSupport,
                "Claude/Claude Extensions/*/manifest.json",
                Json,
                McpbManifest,
                Plugin,
            ),
            p(
                LINUX,
                XdgConfig,
                "{Claude,claude}/Claude Extensions/*/manifest.json",
                Json,
                McpbManifest,
                Plugin,
            ),
            p(
                WINDOWS,
                AppData,
                "Claude/Claude Extensions/*/manifest.json",
                Json,
                McpbManifest,
                Plugin,
            ),
        ],
        process_names: &["claude-desktop", "claude desktop"],
    },
    Client {
        id: "claude-code",
        name: "Claude Code",
        paths: &[
            p(ALL_OS, Home, ".claude.json", Json, ClaudeCodeUser, User),
            p(
                ALL_OS,
                ClaudeConfigDir,
                ".claude.json",
                Json,
                ClaudeCodeUser,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".claude/plugins/{cache,repos,marketplaces}/**/.mcp.json",
                Json,
                McpServersOrFlat,
                Plugin,
            ),
            p(
                ALL_OS,
                Home,
                ".claude/plugins/{cache,repos,marketplaces}/**/plugin.json",
                Json,
                ClaudePlugin,
                Plugin,
            ),
            p(
                LINUX,
                System,
                "etc/claude-code/managed-mcp.json",
                Json,
                McpServers,
                Managed,
            ),
            p(
                MACOS,
                System,
                "Library/Application Support/ClaudeCode/managed-mcp.json",
                Json,
                McpServers,
                Managed,
            ),
            p(
                WINDOWS,
                System,
                "Program Files/ClaudeCode/managed-mcp.json",
                Json,
                McpServers,
                Managed,
            ),
            p(ALL_OS, ProjectRoot, ".mcp.json", Json, McpServers, Project),
        ],
        process_names: &["claude", "@anthropic-ai/claude-code"],
    },
    Client {
        id: "cursor",
        name: "Cursor",
        paths: &[
            p(ALL_OS, Home, ".cursor/mcp.json", Json, McpServers, User),
            p(
                ALL_OS,
                Home,
                ".cursor/plugins/{cache,local}/**/{mcp.json,.mcp.json}",
                Json,
                McpServersOrFlat,
                Plugin,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".cursor/mcp.json",
                Json,
                McpServers,
                Project,
            ),
        ],
        process_names: &["cursor"],
    },
    Client {
        id: "vscode",
        name: "VS Code",
        paths: &[
            p(LINUX, XdgConfig, "Code/User/mcp.json", Json, Servers, User),
            p(
                LINUX,
                XdgConfig,
                "Code/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Code/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Code/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(WINDOWS, AppData, "Code/User/mcp.json", Json, Servers, User),
            p(
                WINDOWS,
                AppData,
                "Code/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(ALL_OS, Home, ".vscode/mcp.json", Json, Servers, User),
            // The Flatpak build keeps its config in its sandbox.
            p(
                LINUX,
                Home,
                ".var/app/com.visualstudio.code/config/Code/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                Home,
                ".var/app/com.visualstudio.code/config/Code/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            // VS Code Server (Remote-SSH, tunnels, WSL) on the host it serves.
            p(
                UNIX,
                Home,
                ".vscode-server/data/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                UNIX,
                Home,
                ".vscode-server/data/{User,Machine}/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            // code-server (browser VS Code on notebook and dev hosts).
            p(
                UNIX,
                Home,
                ".local/share/code-server/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                UNIX,
                Home,
                ".local/share/code-server/{User,Machine}/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".vscode/mcp.json",
                Json,
                Servers,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".vscode/settings.json",
                Json,
                VsCodeSettings,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".devcontainer/devcontainer.json",
                Json,
                Devcontainer,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                "*.code-workspace",
                Json,
                CodeWorkspace,
                Project,
            ),
        ],
        process_names: &["code", "code-oss", "code-server"],
    },
    Client {
        id: "vscode-insiders",
        name: "VS Code Insiders",
        paths: &[
            p(
                LINUX,
                XdgConfig,
                "Code - Insiders/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Code - Insiders/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code - Insiders/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code - Insiders/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code - Insiders/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code - Insiders/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Code - Insiders/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Code - Insiders/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code - Insiders/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Code - Insiders/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code - Insiders/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Code - Insiders/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                UNIX,
                Home,
                ".vscode-server-insiders/data/User/mcp.json",
                Json,
                Servers,
                User,
            ),
        ],
        process_names: &["code-insiders"],
    },
    Client {
        id: "vscodium",
        name: "VSCodium",
        paths: &[
            p(
                LINUX,
                XdgConfig,
                "VSCodium/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "VSCodium/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "VSCodium/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "VSCodium/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "VSCodium/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "VSCodium/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "VSCodium/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "VSCodium/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "VSCodium/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "VSCodium/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "VSCodium/User/profiles/*/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "VSCodium/User/profiles/*/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                LINUX,
                Home,
                ".var/app/com.vscodium.codium/config/VSCodium/User/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                LINUX,
                Home,
                ".var/app/com.vscodium.codium/config/VSCodium/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
        ],
        process_names: &["codium", "vscodium"],
    },
    Client {
        id: "copilot-cli",
        name: "GitHub Copilot CLI",
        paths: &[p(
            ALL_OS,
            Home,
            ".copilot/mcp-config.json",
            Json,
            McpServers,
            User,
        )],
        process_names: &["copilot", "@github/copilot"],
    },
    Client {
        id: "windsurf",
        name: "Windsurf",
        paths: &[
            p(
                ALL_OS,
                Home,
                ".codeium/windsurf/mcp_config.json",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".codeium/windsurf-next/mcp_config.json",
                Json,
                McpServers,
                User,
            ),
        ],
        process_names: &["windsurf", "windsurf-next"],
    },
    Client {
        id: "gemini-cli",
        name: "Gemini CLI",
        paths: &[
            p(
                ALL_OS,
                Home,
                ".gemini/settings.json",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".gemini/extensions/*/gemini-extension.json",
                Json,
                McpServers,
                Plugin,
            ),
            p(
                LINUX,
                System,
                "etc/gemini-cli/{settings.json,system-defaults.json}",
                Json,
                McpServers,
                Managed,
            ),
            p(
                MACOS,
                System,
                "Library/Application Support/GeminiCli/{settings.json,system-defaults.json}",
                Json,
                McpServers,
                Managed,
            ),
            p(
                WINDOWS,
                System,
                "ProgramData/gemini-cli/{settings.json,system-defaults.json}",
                Json,
                McpServers,
                Managed,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".gemini/extensions/*/gemini-extension.json",
                Json,
                McpServers,
                Plugin,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".gemini/settings.json",
                Json,
                McpServers,
                Project,
            ),
        ],
        process_names: &["gemini", "@google/gemini-cli"],
    },
    Client {
        id: "antigravity",
        name: "Antigravity",
        paths: &[
            p(
                ALL_OS,
                Home,
                ".gemini/antigravity/mcp_config.json",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".gemini/config/mcp_config.json",
                Json,
                McpServers,
                User,
            ),
            p(
                LINUX,
                XdgConfig,
                "Antigravity/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "Antigravity/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "Antigravity/User/settings.json",
                Json,
                VsCodeSettings,
                User,
            ),
        ],
        process_names: &["antigravity"],
    },
    Client {
        id: "kiro",
        name: "Kiro",
        paths: &[
            p(ALL_OS, Home, ".kiro/settings/mcp.json", Json, Kiro, User),
            p(ALL_OS, Home, ".kiro/agents/*.json", Json, McpServers, User),
            p(
                ALL_OS,
                ProjectRoot,
                ".kiro/agents/*.json",
                Json,
                McpServers,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".kiro/settings/mcp.json",
                Json,
                Kiro,
                Project,
            ),
        ],
        process_names: &["kiro"],
    },
    Client {
        id: "codex",
        name: "Codex CLI",
        paths: &[
            p(ALL_OS, CodexHome, "config.toml", Toml, Codex, User),
            p(ALL_OS, CodexHome, "*.config.toml", Toml, Codex, User),
            p(UNIX, System, "etc/codex/config.toml", Toml, Codex, Managed),
            p(
                WINDOWS,
                System,
                "ProgramData/OpenAI/Codex/config.toml",
                Toml,
                Codex,
                Managed,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".codex/config.toml",
                Toml,
                Codex,
                Project,
            ),
        ],
        process_names: &["codex", "@openai/codex"],
    },
    Client {
        id: "opencode",
        name: "opencode",
        paths: &[
            p(
                ALL_OS,
                XdgConfig,
                "opencode/{opencode.json,opencode.jsonc,config.json}",
                Json,
                Opencode,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".opencode/{opencode.json,opencode.jsonc}",
                Json,
                Opencode,
                User,
            ),
            p(ALL_OS, OpencodeConfig, "", Json, Opencode, User),
            p(
                ALL_OS,
                ProjectRoot,
                "{opencode.json,opencode.jsonc}",
                Json,
                Opencode,
                Project,
            ),
        ],
        process_names: &["opencode", "opencode-ai"],
    },
    Client {
        id: "zed",
        name: "Zed",
        paths: &[
            p(ALL_OS, XdgConfig, "zed/settings.json", Json, Zed, User),
            p(
                LINUX,
                Home,
                ".var/app/dev.zed.Zed/config/zed/settings.json",
                Json,
                Zed,
                User,
            ),
            // Sources disagree on Windows; read every candidate.
            p(WINDOWS, AppData, "Zed/settings.json", Json, Zed, User),
            p(WINDOWS, LocalAppData, "Zed/settings.json", Json, Zed, User),
            p(
                ALL_OS,
                ProjectRoot,
                ".zed/settings.json",
                Json,
                Zed,
                Project,
            ),
        ],
        process_names: &["zed", "zed-editor", "zeditor"],
    },
    Client {
        id: "continue",
        name: "Continue",
        paths: &[
            p(
                ALL_OS,
                Home,
                ".continue/config.yaml",
                Yaml,
                ContinueYaml,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".continue/config.json",
                Json,
                ContinueJson,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".continue/mcpServers/{*.yaml,*.yml}",
                Yaml,
                ContinueYaml,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".continue/mcpServers/*.json",
                Json,
                ContinueBlock,
                User,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".continue/mcpServers/{*.yaml,*.yml}",
                Yaml,
                ContinueYaml,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".continue/mcpServers/*.json",
                Json,
                ContinueBlock,
                Project,
            ),
        ],
        process_names: &[],
    },
    Client {
        id: "cline",
        name: "Cline",
        paths: &[
            p(
                LINUX,
                XdgConfig,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
                Json,
                McpServers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
                Json,
                McpServers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
                Json,
                McpServers,
                User,
            ),
        ],
        process_names: &[],
    },
    Client {
        id: "roo-code",
        name: "Roo Code",
        paths: &[
            p(
                LINUX,
                XdgConfig,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/rooveterinaryinc.roo-cline/settings/{mcp_settings.json,cline_mcp_settings.json}",
                Json,
                McpServers,
                User,
            ),
            p(
                MACOS,
                MacAppSupport,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/rooveterinaryinc.roo-cline/settings/{mcp_settings.json,cline_mcp_settings.json}",
                Json,
                McpServers,
                User,
            ),
            p(
                WINDOWS,
                AppData,
                "{Code,Cursor,Code - Insiders,VSCodium,Windsurf}/User/globalStorage/rooveterinaryinc.roo-cline/settings/{mcp_settings.json,cline_mcp_settings.json}",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".roo/mcp.json",
                Json,
                McpServers,
                Project,
            ),
        ],
        process_names: &[],
    },
    Client {
        id: "goose",
        name: "Goose",
        paths: &[
            p(UNIX, XdgConfig, "goose/config.yaml", Yaml, Goose, User),
            p(
                WINDOWS,
                AppData,
                "Block/goose/config/config.yaml",
                Yaml,
                Goose,
                User,
            ),
        ],
        process_names: &["goose", "goosed"],
    },
    Client {
        id: "lm-studio",
        name: "LM Studio",
        paths: &[
            p(ALL_OS, Home, ".lmstudio/mcp.json", Json, McpServers, User),
            p(
                UNIX,
                Home,
                ".cache/lm-studio/mcp.json",
                Json,
                McpServers,
                User,
            ),
        ],
        process_names: &["lm-studio", "lm studio", "lms"],
    },
    Client {
        id: "amazon-q",
        name: "Amazon Q Developer",
        paths: &[
            p(
                ALL_OS,
                Home,
                ".aws/amazonq/mcp.json",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                Home,
                ".aws/amazonq/{agents,cli-agents}/*.json",
                Json,
                McpServers,
                User,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".amazonq/cli-agents/*.json",
                Json,
                McpServers,
                Project,
            ),
            p(
                ALL_OS,
                ProjectRoot,
                ".amazonq/mcp.json",
                Json,
                McpServers,
                Project,
            ),
        ],
        process_names: &["q", "qchat"],
    },
    Client {
        id: "crush",
        name: "Crush",
        paths: &[
            p(UNIX, XdgConfig, "crush/crush.json", Json, Crush, User),
            p(WINDOWS, LocalAppData, "crush/crush.json", Json, Crush, User),
            p(
                ALL_OS,
                ProjectRoot,
                "{.crush.json,crush.json}",
                Json,
                Crush,
                Project,
            ),
        ],
        process_names: &["crush"],
    },
    Client {
        id: "jetbrains-copilot",
        name: "GitHub Copilot for JetBrains",
        paths: &[
            p(
                UNIX,
                XdgConfig,
                "github-copilot/intellij/mcp.json",
                Json,
                Servers,
                User,
            ),
            p(
                WINDOWS,
                LocalAppData,
                "github-copilot/intellij/mcp.json",
                Json,
                Servers,
                User,
            ),
        ],
        process_names: &[
            "idea", "pycharm", "goland", "webstorm", "clion", "rider", "rubymine", "phpstorm",
        ],
    },
    Client {
        id: "junie",
        name: "JetBrains Junie",
        paths: &[
            p(ALL_OS, Home, ".junie/mcp/mcp.json", Json, McpServers, User),
            p(
                ALL_OS,
                ProjectRoot,
                ".junie/mcp/mcp.json",
                Json,
                McpServers,
                Project,
            ),
        ],
        process_names: &["junie"],
    },
    Client {
        id: "docker-mcp",
        name: "Docker MCP Toolkit",
        paths: &[p(
            ALL_OS,
            Home,
            ".docker/mcp/registry.yaml",
            Yaml,
            DockerRegistry,
            User,
        )],
        process_names: &[],
    },
];

/// Editor workspace-storage directories whose `*/workspace.json` name folders
/// the user opened: each is a project root worth scanning.
pub static WORKSPACE_STORAGE: &[(OsMask, Base, &str)] = &[
    (
        LINUX,
        XdgConfig,
        "{Code,Code - Insiders,Cursor,Windsurf,VSCodium}/User/workspaceStorage",
    ),
    (
        MACOS,
        MacAppSupport,
        "{Code,Code - Insiders,Cursor,Windsurf,VSCodium}/User/workspaceStorage",
    ),
    (
        WINDOWS,
        AppData,
        "{Code,Code - Insiders,Cursor,Windsurf,VSCodium}/User/workspaceStorage",
    ),
    (
        UNIX,
        Home,
        "{.vscode-server,.vscode-server-insiders,.cursor-server}/data/User/workspaceStorage",
    ),
    (UNIX, Home, ".local/share/code-server/User/workspaceStorage"),
];

/// The index of a client in [`CLIENTS`] (report order), by id.
pub fn index_of(id: &str) -> usize {
    CLIENTS
        .iter()
        .position(|c| c.id == id)
        .unwrap_or(usize::MAX)
}

pub fn by_id(id: &str) -> Option<&'static Client> {
    CLIENTS.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_url_safe() {
        let mut seen = HashSet::new();
        for c in CLIENTS {
            assert!(seen.insert(c.id), "duplicate client id {}", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{}",
                c.id
            );
            assert!(!c.paths.is_empty());
        }
    }

    #[test]
    fn alternatives_stay_within_one_path_component() {
        // `{a,b/c}` would be matched as one directory entry named `b/c`.
        for c in CLIENTS {
            for r in c.paths {
                for comp in r.rel.split('/') {
                    let open = comp.matches('{').count();
                    assert_eq!(open, comp.matches('}').count(), "{}: {}", c.id, r.rel);
                }
            }
        }
    }

    #[test]
    fn every_os_convention_is_covered_for_user_configs() {
        // A client with only ALL_OS paths is fine; one that lists OS-specific
        // user paths must cover all three.
        for c in CLIENTS {
            let mask = c
                .paths
                .iter()
                .filter(|r| r.scope == Scope::User)
                .fold(0, |m, r| m | r.os);
            assert_eq!(mask, ALL_OS, "{} misses an OS", c.id);
        }
    }
}
