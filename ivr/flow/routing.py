"""Turn a destination from the config into a bridging plan for the dialplan."""

from __future__ import annotations

from ivr.config.destinations import Destination, DestinationKind
from ivr.config.schema import Area, Hotline, HotlineConfig, iter_areas
from ivr.flow.steps import DialTarget, Route, RouteKind


class RoutingTable:
    """Answers "where does this destination ring" for one config.

    Built once per config; every lookup is a dict access so the key-to-ring
    path stays short under load.
    """

    def __init__(self, config: HotlineConfig) -> None:
        self._config = config
        self._areas: dict[str, Area] = {a.code: a for a in iter_areas(config.areas)}
        self._trunks = {t.id: t for t in config.trunks}
        self._default_trunk = config.trunks[0].id if config.trunks else None
        self._departments = {d.code: d for d in config.departments}

    def area(self, code: str) -> Area | None:
        return self._areas.get(code)

    def route_for(self, destination: Destination, hotline: Hotline) -> Route:
        """A bridging plan. Menus, prompts and case lookup are handled by the flow
        before it gets here; they are refused so a mistake is loud."""
        kind = destination.kind
        if kind is DestinationKind.QUEUE:
            return Route(RouteKind.QUEUE, queue=destination.argument, description=str(destination))
        if kind is DestinationKind.AREA:
            return self._chairman_route(destination.argument, hotline)
        if kind in (DestinationKind.PHONE, DestinationKind.TEL, DestinationKind.DEPARTMENT):
            target = self._dial_target(destination, hotline.ring_seconds)
            return Route(
                RouteKind.DIAL,
                targets=(target,),
                final=self.route_for(hotline.failure_destination, hotline)
                if hotline.failure_destination != destination
                else None,
                description=str(destination),
            )
        if kind is DestinationKind.VOICEMAIL:
            return Route(RouteKind.VOICEMAIL, description="voicemail")
        if kind is DestinationKind.HANGUP:
            return Route(RouteKind.HANGUP, description="hangup")
        if kind is DestinationKind.CALLBACK:
            # Nothing to bridge: the caller hears the request confirmed, then the
            # call ends; the queue manager dials them back later.
            return Route(
                RouteKind.HANGUP, callback_queue=destination.argument, description=str(destination)
            )
        raise ValueError(f"{destination} is not a bridging destination")

    def _chairman_route(self, code: str, hotline: Hotline) -> Route:
        """Ring the chairman, then each dialable fallback; the first fallback that
        is not a phone (a queue, voicemail) is where the call ends up."""
        area = self._areas[code]
        if area.chairman is None:
            raise ValueError(f"area {code} has no chairman")
        ring = area.ring_seconds or hotline.ring_seconds
        targets = [self._dial_target(area.chairman, ring, label=f"chairman:{code}")]
        final: Route | None = None
        for fallback in area.fallbacks:
            if fallback.kind in (
                DestinationKind.PHONE,
                DestinationKind.TEL,
                DestinationKind.DEPARTMENT,
                DestinationKind.AREA,
            ):
                targets.append(self._dial_target(fallback, ring))
                continue
            final = self.route_for(fallback, hotline)
            break
        return Route(
            RouteKind.DIAL,
            targets=tuple(targets),
            final=final,
            area_code=code,
            description=f"area:{code}",
        )

    def _dial_target(
        self, destination: Destination, ring_seconds: int, label: str | None = None
    ) -> DialTarget:
        kind = destination.kind
        label = label or str(destination)
        if kind is DestinationKind.PHONE:
            return DialTarget(f"PJSIP/{destination.argument}", ring_seconds, label)
        if kind is DestinationKind.TEL:
            trunk_id = destination.tel_trunk or self._default_trunk
            if trunk_id is None:
                raise ValueError(f"{destination}: no trunk")
            prefix = self._trunks[trunk_id].dial_prefix
            return DialTarget(
                f"PJSIP/{prefix}{destination.tel_number}@{trunk_id}", ring_seconds, label
            )
        if kind is DestinationKind.DEPARTMENT:
            department = self._departments[destination.argument]
            inner = self._dial_target(department.target, ring_seconds)
            return DialTarget(inner.dial_string, ring_seconds, label)
        if kind is DestinationKind.AREA:
            # A fallback naming another unit rings that unit's chairman only, so
            # fallback chains cannot loop.
            area = self._areas[destination.argument]
            if area.chairman is None:
                raise ValueError(f"area {area.code} has no chairman")
            return self._dial_target(area.chairman, ring_seconds, label=f"chairman:{area.code}")
        raise ValueError(f"{destination} cannot be dialled")
