"""One module per CLI command; each ``cmd_<name>(args) -> exit code``."""

from vistag.cli.commands.demo import cmd_demo
from vistag.cli.commands.engine import cmd_engine
from vistag.cli.commands.index import cmd_index, cmd_reindex
from vistag.cli.commands.mappings import cmd_mappings
from vistag.cli.commands.models import cmd_eval, cmd_tag, cmd_train
from vistag.cli.commands.pipelines import cmd_pipelines
from vistag.cli.commands.relations import cmd_expand_tags, cmd_relations
from vistag.cli.commands.search import cmd_check_tags, cmd_search
from vistag.cli.commands.security import cmd_security
from vistag.cli.commands.serve import cmd_serve
from vistag.cli.commands.service import cmd_service
from vistag.cli.commands.sync import cmd_sync

__all__ = ["cmd_check_tags", "cmd_demo", "cmd_engine", "cmd_eval", "cmd_expand_tags", "cmd_index", "cmd_mappings", "cmd_pipelines", "cmd_reindex", "cmd_relations",
           "cmd_search", "cmd_security", "cmd_serve", "cmd_service", "cmd_sync", "cmd_tag", "cmd_train"]
