"""Categories are managed by admins and readable by every token."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.auth import Principal, require_role
from catalog.errors import Conflict, NotFound
from catalog.models import Category
from catalog.services import audit


def list_categories(session: Session, principal: Principal) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.name)))


def create_category(session: Session, principal: Principal, name: str, title: str) -> Category:
    require_role(principal, "admin")
    if session.get(Category, name) is not None:
        raise Conflict(f"a category named {name!r} exists already")
    category = Category(name=name, title=title)
    session.add(category)
    audit.record(session, principal, "category.create", "category", name)
    session.commit()
    return category


def delete_category(session: Session, principal: Principal, name: str) -> None:
    require_role(principal, "admin")
    category = session.get(Category, name)
    if category is None:
        raise NotFound(f"no category {name!r}")
    session.delete(category)
    audit.record(session, principal, "category.delete", "category", name)
    session.commit()
