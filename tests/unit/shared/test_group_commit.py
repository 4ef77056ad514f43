"""Group commit: the writes of many green threads in one store command, each caller
returning once its own item is stored."""
import eventlet
import pytest
from eventlet.event import Event

from wangge.mongo import GroupCommit


class HeldWrites:
    """A write that waits to be let go: what each command was given, in order."""

    def __init__(self):
        self.commands = []
        self.gate = Event()

    def __call__(self, items):
        self.commands.append(list(items))
        if len(self.commands) == 1:
            self.gate.wait()
        return [f"stored {item}" for item in items]


def queued_behind_a_command():
    """"a" written in a command held under way, "b", "c" and "d" queued behind it, in that order."""
    writes = HeldWrites()
    group = GroupCommit(writes)
    first = eventlet.spawn(group, "a")
    eventlet.sleep(0)
    behind = [eventlet.spawn(group, item) for item in ("b", "c", "d")]
    eventlet.sleep(0)
    return writes, group, first, behind


def test_callers_queued_behind_a_command_under_way_share_the_next_one_and_each_gets_its_own_result():
    writes, _, first, behind = queued_behind_a_command()
    writes.gate.send()
    assert [first.wait()] + [caller.wait() for caller in behind] == ["stored a", "stored b", "stored c", "stored d"]
    assert writes.commands == [["a"], ["b", "c", "d"]]


def test_a_write_that_fails_fails_every_caller_in_its_command_and_the_next_caller_writes_at_once():
    def refuse(items):
        raise OSError("store gone")

    group = GroupCommit(refuse)
    with pytest.raises(OSError):
        group("a")
    group.write = lambda items: [f"stored {item}" for item in items]
    assert group("b") == "stored b"


@pytest.mark.parametrize("killed", [0, 1], ids=["the first in line, who would lead the next command", "one further back"])
def test_a_caller_killed_while_waiting_its_turn_leaves_the_next_command_to_the_others(killed):
    writes, group, first, behind = queued_behind_a_command()
    behind.pop(killed).kill()
    writes.gate.send()
    with eventlet.Timeout(5):
        results = [first.wait()] + [caller.wait() for caller in behind]
    assert results == ["stored a"] + [f"stored {item}" for item in ("b", "c", "d") if item != "bcd"[killed]]
    assert writes.commands[1] == [item for item in ("b", "c", "d") if item != "bcd"[killed]]
    assert group("e") == "stored e"  # and the group is not left waiting on a command nobody leads
