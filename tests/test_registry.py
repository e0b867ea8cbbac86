"""The registry of parts: adding, clashes, names, namespaces, versions, look-ups and suggestions."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

import gankit
from gankit import PartNotFoundError, RegistrationError
from gankit.registry import KINDS, NoParams, Params, Part, Provider, Registry, did_you_mean, parse_ref, suggest

GANKIT = Provider("gankit", "0.1.0")
PLUG = Provider("gankit-myplug", "1.2", "myplug")
OTHER = Provider("gankit-otherplug", "3.0", "myplug")


class HalfParams(Params):
    """Parameters of a test schedule."""

    factor: float = Field(0.5, gt=0, le=1, description="The factor.")
    label: str = "half"


def half(params: HalfParams, **context):
    """Half the learning rate.

    A longer description that is not the summary.
    """
    return lambda step: params.factor


def constant(params, **context):
    """The same factor at every step."""
    return lambda step: 1.0


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.add("schedule", "constant", constant, provider=GANKIT)
    reg.add("schedule", "cosine", constant, provider=GANKIT)
    reg.add("schedule", "linear-warmup", constant, provider=GANKIT)
    reg.add("loss", "hinge", constant, provider=GANKIT, role="adversarial")
    reg.add("loss", "r1", constant, provider=GANKIT, role="regularizer")
    reg.add("generator", "dcgan", constant, provider=GANKIT)
    reg.add("discriminator", "dcgan", constant, provider=GANKIT)
    return reg


# --------------------------------------------------------------------------- adding


def test_add_returns_part_with_everything_known(registry: Registry) -> None:
    part = registry.add("schedule", "myplug.half", half, HalfParams, provider=PLUG)
    assert isinstance(part, Part)
    assert (part.kind, part.name, part.version, part.provider) == ("schedule", "myplug.half", 1, PLUG)
    assert part.params is HalfParams
    assert part.summary == "Half the learning rate."
    assert "A longer description" in part.doc
    assert part.ref == "myplug.half@v1"
    assert registry.get("schedule", "myplug.half") is part
    assert ("schedule", "myplug.half") in registry
    assert str(part.provider) == "gankit-myplug 1.2"


def test_explicit_summary_and_no_params(registry: Registry) -> None:
    part = registry.add("trick", "myplug.noop", lambda p, **c: None, provider=PLUG, summary="Does nothing.")
    assert part.summary == "Does nothing."
    assert part.params is NoParams
    assert part.validate() == NoParams()
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        part.validate({"anything": 1})


def test_build_validates_params_and_passes_context() -> None:
    seen = {}

    def factory(params: HalfParams, **context):
        seen.update(context, params=params)
        return params.factor

    reg = Registry()
    part = reg.add("schedule", "myplug.half", factory, HalfParams, provider=PLUG)
    assert part.build({"factor": 0.25}, total_steps=10) == 0.25
    assert seen == {"total_steps": 10, "params": HalfParams(factor=0.25)}
    assert part.build() == 0.5
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        part.build({"factor": 2})
    # a validated instance passes through; an instance of another model is re-validated
    instance = HalfParams(factor=0.1)
    assert part.validate(instance) is instance


def test_unknown_kind_suggests_the_closest(registry: Registry) -> None:
    with pytest.raises(RegistrationError) as info:
        registry.add("genrator", "myplug.net", half, provider=PLUG)
    message = str(info.value)
    assert "gankit-myplug 1.2" in message
    assert "unknown kind 'genrator'" in message
    assert "Did you mean 'generator'" in message
    assert "Kinds: " + ", ".join(KINDS) in message


@pytest.mark.parametrize("name", ["Half", "my plug.half", "a.b.c", "-half", "half_", "myplug.", ".half", "", "2x"])
def test_bad_part_names_are_refused(name: str) -> None:
    with pytest.raises(RegistrationError, match="bad part name") as info:
        Registry().add("schedule", name, half, provider=PLUG)
    assert repr(name) in str(info.value)


def test_builtin_names_carry_no_namespace() -> None:
    with pytest.raises(RegistrationError) as info:
        Registry().add("schedule", "gankit.half", half, provider=GANKIT)
    assert "built-in part names carry no namespace, got 'gankit.half'" in str(info.value)


def test_plugin_cannot_register_into_the_builtin_namespace() -> None:
    with pytest.raises(RegistrationError) as info:
        Registry().add("schedule", "half", half, provider=PLUG)
    message = str(info.value)
    assert "cannot register schedule 'half' into the built-in namespace" in message
    assert "'myplug.<name>'" in message


def test_plugin_cannot_register_into_another_namespace() -> None:
    with pytest.raises(RegistrationError) as info:
        Registry().add("schedule", "otherplug.half", half, provider=PLUG)
    message = str(info.value)
    assert "cannot register schedule 'otherplug.half' into namespace 'otherplug'" in message
    assert "'myplug.<name>'" in message


@pytest.mark.parametrize("version", [0, -1, 1.5, "2"])
def test_bad_versions_are_refused(version) -> None:
    with pytest.raises(RegistrationError, match=r"version of schedule 'myplug.half' must be an int >= 1"):
        Registry().add("schedule", "myplug.half", half, provider=PLUG, version=version)


def test_params_must_be_a_pydantic_model_forbidding_unknown_keys() -> None:
    class Loose(BaseModel):
        factor: float = 0.5

    with pytest.raises(RegistrationError, match="must be a pydantic model class"):
        Registry().add("schedule", "myplug.half", half, dict, provider=PLUG)
    with pytest.raises(RegistrationError) as info:
        Registry().add("schedule", "myplug.half", half, Loose, provider=PLUG)
    assert "must forbid unknown keys" in str(info.value)
    assert "gankit.Params" in str(info.value)


def test_same_name_and_version_twice_names_both_providers() -> None:
    reg = Registry()
    first = reg.add("schedule", "myplug.half", half, HalfParams, provider=PLUG)
    with pytest.raises(RegistrationError) as info:
        reg.add("schedule", "myplug.half", constant, provider=OTHER)
    message = str(info.value)
    assert "schedule 'myplug.half' (v1) is registered twice" in message
    assert "by gankit-myplug 1.2 and by gankit-otherplug 3.0" in message
    assert "GANKIT_DISABLE_PLUGINS=1" in message
    # no silent overwrite: the first registration stays
    assert reg.get("schedule", "myplug.half") is first


def test_same_builtin_name_twice_is_a_clash_too(registry: Registry) -> None:
    with pytest.raises(RegistrationError, match=r"'constant' \(v1\) is registered twice: by gankit 0.1.0 and by"):
        registry.add("schedule", "constant", half, provider=Provider("gankit", "9.9"))


def test_same_name_in_different_kinds_is_no_clash(registry: Registry) -> None:
    assert registry.get("generator", "dcgan").kind == "generator"
    assert registry.get("discriminator", "dcgan").kind == "discriminator"
    assert [p.kind for p in registry.find("dcgan")] == ["generator", "discriminator"]


# --------------------------------------------------------------------------- versions


def test_versions_pinned_or_newest() -> None:
    reg = Registry()
    v1 = reg.add("schedule", "myplug.half", half, HalfParams, provider=PLUG, version=1)
    v3 = reg.add("schedule", "myplug.half", constant, provider=PLUG, version=3)
    v2 = reg.add("schedule", "myplug.half", half, HalfParams, provider=PLUG, version=2)
    assert reg.get("schedule", "myplug.half") is v3
    assert reg.get("schedule", "myplug.half@v1") is v1
    assert reg.get("schedule", "myplug.half@2") is v2
    assert reg.get("schedule", "myplug.half", version=1) is v1
    assert v2.ref == "myplug.half@v2"
    assert len(reg) == 3
    assert reg.parts() == [v3]
    assert reg.parts(all_versions=True) == [v1, v2, v3]
    assert reg.find("myplug.half@v1") == [v3]


def test_missing_version_lists_the_available_ones() -> None:
    reg = Registry()
    reg.add("schedule", "myplug.half", half, provider=PLUG, version=1)
    reg.add("schedule", "myplug.half", half, provider=PLUG, version=2)
    with pytest.raises(PartNotFoundError) as info:
        reg.get("schedule", "myplug.half@v7")
    assert str(info.value) == "schedule 'myplug.half' has no version v7; available: v1, v2"


@pytest.mark.parametrize("ref", ["cosine@latest", "cosine@", "cosine@v", "cosine@v1.0"])
def test_bad_version_syntax(ref: str) -> None:
    with pytest.raises(PartNotFoundError) as info:
        parse_ref(ref)
    assert f"bad version in {ref!r}: write it as 'name@v2'" in str(info.value)


def test_parse_ref() -> None:
    assert parse_ref("dcgan") == ("dcgan", None)
    assert parse_ref("dcgan@v2") == ("dcgan", 2)
    assert parse_ref("myplug.thing@3") == ("myplug.thing", 3)


# --------------------------------------------------------------------------- look-ups


def test_unknown_name_suggests_and_lists_available(registry: Registry) -> None:
    with pytest.raises(PartNotFoundError) as info:
        registry.get("schedule", "cosin")
    message = str(info.value)
    assert message.startswith("unknown schedule 'cosin'.")
    assert "Did you mean 'cosine'" in message
    assert "Available: constant, cosine, linear-warmup." in message


def test_unknown_name_without_close_match(registry: Registry) -> None:
    with pytest.raises(PartNotFoundError) as info:
        registry.get("schedule", "zzzzzz")
    message = str(info.value)
    assert "Did you mean" not in message
    assert "Available: constant, cosine, linear-warmup." in message


def test_unknown_name_in_an_empty_kind() -> None:
    with pytest.raises(PartNotFoundError, match=r"unknown metric 'fid'\. Available: \(none\)\."):
        Registry().get("metric", "fid")


def test_unknown_kind_on_lookup(registry: Registry) -> None:
    with pytest.raises(PartNotFoundError) as info:
        registry.get("schedul", "cosine")
    assert "unknown kind 'schedul'. Did you mean 'schedule'?" in str(info.value)


def test_part_not_found_is_a_lookup_and_gankit_error(registry: Registry) -> None:
    with pytest.raises(LookupError):
        registry.get("schedule", "nope")
    with pytest.raises(gankit.GankitError):
        registry.get("schedule", "nope")


def test_roles_narrow_lookups(registry: Registry) -> None:
    assert registry.get("loss", "hinge", role="adversarial").name == "hinge"
    assert registry.names("loss") == ["hinge", "r1"]
    assert registry.names("loss", role="regularizer") == ["r1"]
    with pytest.raises(PartNotFoundError) as info:
        registry.get("loss", "r1", role="adversarial")
    message = str(info.value)
    assert "unknown adversarial loss 'r1'" in message
    assert "Available: hinge." in message


def test_parts_are_sorted_by_kind_order_then_name(registry: Registry) -> None:
    registry.add("data", "ring", constant, provider=GANKIT)
    parts = registry.parts()
    keys = [(p.kind, p.name) for p in parts]
    order = {k: i for i, k in enumerate(KINDS)}
    assert keys == sorted(keys, key=lambda k: (order[k[0]], k[1]))
    assert keys[0] == ("generator", "dcgan")
    assert [p.name for p in registry.parts("schedule")] == ["constant", "cosine", "linear-warmup"]
    assert registry.parts("metric") == []


def test_suggest_and_did_you_mean() -> None:
    names = ["cosine", "constant", "linear-warmup", "step"]
    assert suggest("cosin", names)[0] == "cosine"
    assert "linear-warmup" in suggest("warmup", names)
    assert did_you_mean("cosin", names).startswith(" Did you mean 'cosine'")
    assert did_you_mean("qqqq", names) == ""
    assert len(suggest("c", ["ca", "cb", "cc", "cd", "ce"], n=2)) <= 2


def test_builtin_registry_has_every_builtin_part_from_gankit(builtin_registry: Registry) -> None:
    provider = {str(p.provider) for p in builtin_registry.parts()}
    assert provider == {f"gankit {gankit.__version__}"}
    for kind, name in [
        ("generator", "dcgan"),
        ("generator", "mlp"),
        ("discriminator", "dcgan"),
        ("loss", "non-saturating"),
        ("loss", "r1"),
        ("schedule", "constant"),
        ("balance", "always"),
        ("trick", "ema"),
        ("data", "ring"),
    ]:
        assert (kind, name) in builtin_registry
    assert all("." not in p.name for p in builtin_registry.parts())
    assert all(p.summary for p in builtin_registry.parts()), "every built-in part needs a summary line"
