"""The access catalogue — CONTRACT (other access modules code against these names).

Entitlements, roles, separation-of-duties rules, training records and group
mappings; who a platform user is in the register. Writers need ACCESS_ADMIN
(linking a user, USERS_MANAGE); readers ACCESS_READ, except that staff with
ACCESS_REQUEST may also read entitlements and roles: they must see what they can
ask for. Every write is audited in the same transaction, and every check runs
before anything is added, so a refused write leaves no row and no record.
"""

from __future__ import annotations

from portcullis.access.catalogue_entitlements import (
    create_entitlement,
    entitlement_view,
    find_entitlement_by_key,
    get_entitlement,
    list_entitlements,
    required_approvals,
    update_entitlement,
)
from portcullis.access.catalogue_identity import acting_person, colleagues, link_user_to_person
from portcullis.access.catalogue_roles import (
    create_role,
    find_role_by_key,
    get_role,
    list_roles,
    role_eligibility_problems,
    role_entitlement_ids,
    role_view,
    update_role,
)
from portcullis.access.catalogue_rules import (
    create_group_mapping,
    create_sod_rule,
    group_mapping_view,
    group_mappings_page,
    list_group_mappings,
    list_sod_rules,
    sod_rule_view,
    sod_rules_page,
)
from portcullis.access.catalogue_training import (
    current_courses,
    lapsed_courses,
    list_training,
    record_training,
    training_page,
    training_view,
)

__all__ = [
    "acting_person",
    "colleagues",
    "create_entitlement",
    "create_group_mapping",
    "create_role",
    "create_sod_rule",
    "current_courses",
    "entitlement_view",
    "find_entitlement_by_key",
    "find_role_by_key",
    "get_entitlement",
    "get_role",
    "group_mapping_view",
    "group_mappings_page",
    "lapsed_courses",
    "link_user_to_person",
    "list_entitlements",
    "list_group_mappings",
    "list_roles",
    "list_sod_rules",
    "list_training",
    "record_training",
    "required_approvals",
    "role_eligibility_problems",
    "role_entitlement_ids",
    "role_view",
    "sod_rule_view",
    "sod_rules_page",
    "training_page",
    "training_view",
    "update_entitlement",
    "update_role",
]
