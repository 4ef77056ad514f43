"""Group commit: the writes of many green threads in one store command, each caller
returning once its own item is stored."""
import eventlet
import pytest
from eventlet.event import Event

from wangge.mongo import GroupCommit, WriteCutOff


class HeldWrites:
    """A write whose first ``held`` commands each wait to be let go (``gates``); what each
    command was given, in order."""

    def __init__(self, held=1):
        self.commands = []
        self.gates = [Event() for _ in range(held)]

    def __call__(self, items):
        self.commands.append(list(items))
        if len(self.commands) <= len(self.gates):
            self.gates[len(self.commands) - 1].wait()
        return [f"stored {item}" for item in items]


class SecondCommandFails(HeldWrites):
    def __call__(self, items):
        stored = super().__call__(items)
        if len(self.commands) == 2:
            raise OSError("store gone")
        return stored


def queued_behind_a_command(writes):
    """"a" written in a command held under way, "b", "c" and "d" queued behind it, in that order."""
    group = GroupCommit(writes)
    first = eventlet.spawn(group, "a")
    eventlet.sleep(0)
    behind = [eventlet.spawn(group, item) for item in ("b", "c", "d")]
    eventlet.sleep(0)
    return group, first, behind


def test_callers_queued_behind_a_command_under_way_share_the_next_one_and_each_gets_its_own_result():
    writes = HeldWrites()
    _, first, behind = queued_behind_a_command(writes)
    writes.gates[0].send()
    assert [first.wait()] + [caller.wait() for caller in behind] == ["stored a", "stored b", "stored c", "stored d"]
    assert writes.commands == [["a"], ["b", "c", "d"]]


def test_a_write_that_fails_fails_every_caller_in_its_command_and_the_next_command_is_written():
    writes = SecondCommandFails()
    group, first, behind = queued_behind_a_command(writes)
    writes.gates[0].send()
    with eventlet.Timeout(5):
        assert first.wait() == "stored a"
        for caller in behind:
            with pytest.raises(OSError):
                caller.wait()
        assert group("e") == "stored e"
    assert writes.commands == [["a"], ["b", "c", "d"], ["e"]]


@pytest.mark.parametrize("killed", [0, 1], ids=["the first in line, who would lead the next command", "one further back"])
def test_a_caller_killed_while_waiting_its_turn_leaves_the_next_command_to_the_others(killed):
    writes = HeldWrites()
    group, first, behind = queued_behind_a_command(writes)
    behind.pop(killed).kill()
    writes.gates[0].send()
    left = [item for item in ("b", "c", "d") if item != "bcd"[killed]]
    with eventlet.Timeout(5):
        assert [first.wait()] + [caller.wait() for caller in behind] == ["stored a"] + [f"stored {item}" for item in left]
        assert group("e") == "stored e"  # and the group is not left waiting on a command nobody leads
    assert writes.commands == [["a"], left, ["e"]]


def test_a_caller_killed_once_handed_the_next_command_passes_it_on(monkeypatch):
    writes = HeldWrites()
    group, first, behind = queued_behind_a_command(writes)
    handed_to, hand_on = behind.pop(0), group._hand_on

    def hand_on_then_kill():
        # killed in the moment between being handed the next command and taking it
        monkeypatch.setattr(group, "_hand_on", hand_on)
        hand_on()
        assert group.led_by is not None
        handed_to.kill()

    monkeypatch.setattr(group, "_hand_on", hand_on_then_kill)
    writes.gates[0].send()
    with eventlet.Timeout(5):
        assert [first.wait()] + [caller.wait() for caller in behind] == ["stored a", "stored c", "stored d"]
        assert group("e") == "stored e"
    assert writes.commands == [["a"], ["c", "d"], ["e"]]


def test_a_caller_killed_while_writing_for_others_fails_them_as_a_write_cut_off_not_as_killed():
    writes = HeldWrites(held=2)
    group = GroupCommit(writes)
    first, writer, follower = (eventlet.spawn(group, item) for item in ("a", "b", "c"))
    eventlet.sleep(0)
    writes.gates[0].send()
    with eventlet.Timeout(5):
        assert first.wait() == "stored a"
        while len(writes.commands) < 2:  # "b" writing for itself and "c"
            eventlet.sleep(0)
        writer.kill()
        with pytest.raises(WriteCutOff):
            follower.wait()
        assert group("d") == "stored d"
    assert writes.commands == [["a"], ["b", "c"], ["d"]]
