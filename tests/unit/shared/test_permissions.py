from wangge import permissions


def test_county_admin_may_do_what_any_staff_role_may_but_not_speak_for_machines():
    assert permissions.CASES_ACT.allows({"county_admin"})
    assert permissions.STUDY_EDIT.allows({"county_admin"})
    assert not permissions.ALERTS_POST.allows({"county_admin"})
    assert not permissions.REGISTRY_READ.allows({"integrator"})


def test_roles_outside_a_permission_are_refused():
    assert not permissions.REGISTRY_LOAD.allows({"grid_worker", "town_lead"})
    assert not permissions.CASES_READ.allows({"study_editor"})
    assert not permissions.CASES_READ.allows(set())


def test_public_permissions_need_no_role():
    assert permissions.REQUESTS_FILE.allows(set())


def test_every_permission_appears_once_in_the_table():
    table = permissions.markdown_table()
    assert all(table.count(f"| `{p.name}` |") == 1 for p in permissions.ALL)
