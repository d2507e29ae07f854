"""Population models built from a config: the MLP and the Conv-BN-Act ConvNet (2-D, and 1-D for MNIST-1D).

Depth, precisely (DESIGN §2):
- MLP: the number of hidden layers. `widths=[8, 8]` on 2-D inputs with one output is the 2-8-8-1 network,
  depth 2. `widths` wins over `depth` × `width` when given.
- ConvNet: the number of Conv-BN-Act blocks after the stem, the stem not counted. depth=4 is stem + 4
  blocks = 5 convolutions, then global average pooling and a linear layer to the classes.

The output head follows the task: 1 logit for binary (sigmoid + BCE), one logit per class for multiclass
(softmax + CE), a linear output for regression (MSE); or an explicit `output_activation` applied to the
output (the blobs-depth protocol puts the hidden activation there too, with MSE on its value).

Every forward can record, per layer (the hidden ones, then the output), the pre-activation z, the
activation a and the derivative φ'(z) in the canonical shape (M, B, units, positions): units are features or
channels, positions 1 or the spatial size.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, model_serializer, model_validator
from torch import Tensor, nn

from actlab import rng
from actlab.catalog.activations import GATED_MODELS, Activation, ActivationField, OptionalActivationField
from actlab.errors import ActlabError
from actlab.nn import generative, recurrent, transforms
from actlab.nn import init as inits
from actlab.nn.layers import PopBatchNorm, PopConv, PopLayerNorm, PopLinear, PopPReLU
from actlab.nn.transformer import TransformerCore, ffn_width, parameter_count

# Fields in which the members of one population may differ (applied per replica slice).
MIXABLE = ("activation", "activation_params", "init", "init_gain", "weight_variance", "bias_init", "bias_std",
           "gate_activation", "cell_activation", "recurrent_init", "forget_bias", "discriminator_activation",
           "discriminator_activation_params")
TRANSFORMER_FIELDS = ("heads", "ffn_width", "attention", "patch")  # fields only a transformer's configuration holds
# fields only a recurrent configuration holds (the slots beyond `activation` hold only where the cell has them)
RECURRENT_FIELDS = ("gate_activation", "cell_activation", "bidirectional", "readout", "recurrent_init", "forget_bias")
RECURRENT = recurrent.KINDS
GENERATIVE = ("vae", "gan")
GENERATIVE_FIELDS = ("latent", "likelihood", "discriminator_activation", "discriminator_activation_params")
RECURRENT_INITS = ("default", "lecun_normal", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                   "orthogonal", "normal")
Trace = list[tuple[str, Tensor, Tensor, Tensor]]  # (layer name, z, a, φ'(z)), each (M, B, units, positions)


class ModelConfig(BaseModel):
    """One network, everything but its seed. Units: widths in units (MLP) or channels (ConvNet)."""

    model_config = ConfigDict(extra="forbid")
    kind: Annotated[Literal["mlp", "convnet", "transformer", "rnn", "gru", "lstm", "vae", "gan"], Field(
        description="an MLP, the Conv-Norm-Act ConvNet, a transformer (a decoder for token sequences, a ViT "
                    "for images and signals: actlab.nn.transformer), a recurrent net: a plain RNN, a GRU or an "
                    "LSTM (actlab.nn.recurrent), or a generative pair: a VAE (MLP encoder and decoder) or a GAN "
                    "(MLP generator and discriminator on 2-D mixtures) (actlab.nn.generative)")] = "mlp"
    activation: Annotated[ActivationField, Field(
        validate_default=True, description="hidden activation (a transformer's FFN slot, where a gated entry such as "
                                           "swiglu is allowed too; a recurrent net's state (rnn) or candidate "
                                           "(gru, lstm: tanh unless set; identity in an LSTM is Greff's NIAF)): a "
                                           "catalog name (actlab activations) or an import path "
                                           "'package.module:function'; held as the catalog entry")] = "relu"
    activation_params: Annotated[dict[str, float], Field(description="the activation's parameters, e.g. "
                                                                     "{alpha = 0.2}")] = {}
    depth: Annotated[int, Strict(), Field(ge=0, le=256, description="hidden layers (MLP) or blocks after the stem "
                                                          "(ConvNet)")] = 2
    width: Annotated[int, Strict(), Field(ge=1, le=65536, description="units per hidden layer (MLP) or channels "
                                                            "(ConvNet)")] = 8
    widths: Annotated[list[Annotated[int, Strict(), Field(ge=1, le=65536)]] | None, Field(
        description="MLP: explicit hidden widths, e.g. [16, 32] (wins over depth × width)")] = None
    # A layer followed by BatchNorm has no bias unless `norm_bias` (BatchNorm removes it; its gradient is float
    # noise, which Adam amplifies). PyTorch's modules keep it, and so does the cnn-depth source.
    norm: Annotated[Literal["none", "batch", "layer", "rms"], Field(
        description="normalisation after each hidden layer; ConvNet 'layer' is GroupNorm with one group per "
                    "replica; a transformer's pre-norm: 'layer' (its default) or 'rms' (RMSNorm)")] = "none"
    norm_bias: Annotated[bool, Field(description="keep the bias of a layer followed by BatchNorm, as PyTorch's "
                                                 "Conv2d/Linear do (the cnn-depth source); off: drop it")] = False
    residual: Annotated[bool | Literal["pre"], Field(description=(
        "true: h + φ(norm(W h)) where shapes match; 'pre' (MLP, ConvNet): pre-activation blocks after a linear or "
        "convolutional stem, h + W φ(norm(h)) / √L with L the blocks (He et al. 2016's order; the 1/√L branch "
        "scale keeps the stream's variance finite at any depth, Hayou et al. 2021), the head reading φ(norm(h))"
    ))] = False
    init: Annotated[Literal[inits.SCHEMES], Field(  # type: ignore[valid-type]
        description="weight initialisation; 'default' is the activation's paired scheme")] = "default"
    init_gain: Annotated[float | None, Field(gt=0, le=100, description="weight gain; none: the activation's "
                                                                       "gain for the scheme")] = None
    weight_variance: Annotated[float | None, Field(gt=0, le=10_000, description="σ_w² of mean-field theory: "
                                                    "weights N(0, σ_w²/fan_in) (LeCun normal with gain √σ_w²); "
                                                    "none: the init and gain fields decide")] = None
    bias_init: Annotated[float, Field(ge=-100, le=100, description="initial value of every bias")] = 0.0
    bias_std: Annotated[float, Field(ge=0, le=100, description="biases drawn N(bias_init, bias_std²) (σ_b of "
                                                                "mean-field theory); 0: the constant bias_init")] = 0.0
    output_activation: Annotated[OptionalActivationField, Field(
        description="an explicit output activation (name); the loss is then on its value")] = None
    transform: Annotated[Literal["none", "dks", "tat"], Field(
        description="DKS (Martens et al. 2021) or TAT (Zhang et al. 2022): the hidden activation transformed for "
                    "this depth by the `dks` package, with SUO weights, zero biases and unit-mean-square inputs "
                    "(vanilla MLPs only)")] = "none"
    heads: Annotated[int, Strict(), Field(ge=1, le=256, description="transformer: attention heads (width must be a "
                                                                   "multiple)")] = 4
    ffn_width: Annotated[int | None, Strict(), Field(ge=1, le=1_000_000, description=(
        "transformer: the FFN's hidden width; none: 4 × width, or for a gated FFN 2/3 of that rounded to a multiple "
        "of 8 (equal parameters within 1 % from width 64 up, as Shazeer 2020 matched them; the model's counts "
        "record both)"))] = None
    attention: Annotated[Literal["softmax", "sigmoid", "relu_seqlen", "relu"], Field(description=(
        "transformer: the attention score function: softmax; sigmoid with bias -log n, n the sequence length "
        "(Ramapuram et al. 2024); "
        "relu_seqlen, ReLU divided by the sequence length (Wortsman et al. 2023); relu"))] = "softmax"
    patch: Annotated[int | None, Strict(), Field(ge=1, le=1024, description=(
        "transformer on images or signals (a ViT): the patch side (images) or length (signals)"))] = None
    gate_activation: Annotated[OptionalActivationField, Field(description=(
        "gru, lstm: the gates' activation (none: sigmoid); hard_sigmoid, or an unbounded relu as an experiment"
    ))] = None
    cell_activation: Annotated[OptionalActivationField, Field(description=(
        "lstm: ψ in h = o ⊙ ψ(c), the output activation on the cell state (none: tanh; identity is Greff's NOAF)"
    ))] = None
    bidirectional: Annotated[bool, Field(description="rnn, gru, lstm: a second direction per layer, run backwards "
                                                     "in time; the layers' states are concatenated")] = False
    readout: Annotated[Literal["last", "all"], Field(description=(
        "rnn, gru, lstm: the head reads the top layer's last state (and the backward direction's final state), or "
        "every step's state flattened; a language model's head reads every step"))] = "last"
    recurrent_init: Annotated[Literal["default", "identity", "orthogonal"], Field(description=(
        "rnn, gru, lstm: each W_hh gate block as the init draws it, the identity (IRNN, Le et al. 2015), or "
        "orthogonal"))] = "default"
    forget_bias: Annotated[float | None, Field(ge=-100, le=100, description=(
        "lstm: the forget gate's initial bias (1.0: Gers et al. 2000, Jozefowicz et al. 2015); \"none\": as the "
        "init draws it (PyTorch's own)"))] = 1.0
    latent: Annotated[int, Strict(), Field(ge=1, le=4096, description=(
        "vae: the latent dimensions; gan: the generator's noise dimensions"))] = 8
    likelihood: Annotated[Literal["auto", "bernoulli", "gaussian"], Field(description=(
        "vae: the decoder's likelihood: bernoulli (logits; data in [0, 1], e.g. digits with normalize = 'unit'), "
        "gaussian (the mean, unit variance), or auto: bernoulli where the training data lie in [0, 1], else "
        "gaussian (the choice is recorded with the run's data)"))] = "auto"
    discriminator_activation: Annotated[OptionalActivationField, Field(description=(
        "gan: the discriminator's hidden activation (none: leaky_relu with alpha 0.2, DCGAN's); the generator's is "
        "`activation`, its output `output_activation` (none: identity; tanh)"))] = None
    discriminator_activation_params: Annotated[dict[str, float], Field(description=(
        "gan: the discriminator activation's parameters (with discriminator_activation unset: {alpha = 0.2})"))] = {}
    transform_params: Annotated[dict[str, float], Field(
        description="dks: c_slope_1_target (ζ, 1.5); tat: c_curve_target (τ, 0.3), or c_val_0_target (η, 0.9) "
                    "for leaky_relu")] = {}

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        act = self.activation
        if act.gated and self.kind != "transformer":
            raise ValueError(f"activation {act.name!r} is gated (φ(xW)·xV needs a second projection, which a "
                             f"{self.kind!r} layer does not build); models that take gated entries: "
                             f"{', '.join(GATED_MODELS)} (its FFN slot). Element-wise choices: relu, gelu, swish, ...")
        if self.output_activation is not None and self.output_activation.gated:
            raise ValueError(f"output_activation {self.output_activation.name!r} is gated; an output activation is "
                             "element-wise (or softmax)")
        if self.kind in GENERATIVE:
            self._check_generative()
        elif any(k in self.model_fields_set for k in GENERATIVE_FIELDS):
            given = [k for k in GENERATIVE_FIELDS if k in self.model_fields_set]
            raise ValueError(f"{', '.join(given)}: only a generative model (kind 'vae' or 'gan') has "
                             f"{'these' if len(given) > 1 else 'this'}; kind={self.kind!r}")
        if self.kind in RECURRENT:
            self._check_recurrent()
        else:
            changed = [f"{k}={getattr(self, k)!r}" for k in RECURRENT_FIELDS
                       if k in self.model_fields_set and getattr(self, k) != type(self).model_fields[k].default]
            if changed:
                raise ValueError(f"{', '.join(changed)} apply to recurrent kinds only ({', '.join(RECURRENT)}; "
                                 f"kind={self.kind!r})")
        if self.kind == "transformer":
            if "norm" not in self.model_fields_set:
                self.norm = "layer"  # pre-norm: a transformer without a norm is an ablation, asked for by name
            wrong = [f"{k}={v!r}" for k, v, ok in (
                ("widths", self.widths, self.widths is None), ("norm", self.norm, self.norm != "batch"),
                ("residual", self.residual, not self.residual), ("transform", self.transform, self.transform == "none"),
                ("init", self.init, self.init == "default"), ("init_gain", self.init_gain, self.init_gain is None),
                ("weight_variance", self.weight_variance, self.weight_variance is None),
                ("bias_std", self.bias_std, self.bias_std == 0), ("bias_init", self.bias_init, self.bias_init == 0),
                ("output_activation", self.output_activation, self.output_activation is None))
                if not ok]
            if wrong:
                raise ValueError("a transformer has its own residual stream, GPT-2 initialisation and linear head; "
                                 "it takes depth (blocks), width (d), heads, ffn_width, attention, patch, norm "
                                 f"('layer', 'rms' or 'none') and activation (given {', '.join(wrong)})")
            if self.width % self.heads:
                raise ValueError(f"width={self.width} (d) must be a multiple of heads={self.heads}")
        else:
            if self.norm == "rms":
                raise ValueError("norm='rms' is for transformers; an MLP or ConvNet takes 'none', 'batch' or 'layer'")
            changed = [f"{k}={getattr(self, k)!r}" for k in ("ffn_width", "patch", "attention", "heads")
                       if k in self.model_fields_set and getattr(self, k) != type(self).model_fields[k].default]
            if changed:
                raise ValueError(f"{', '.join(changed)} apply to kind='transformer' only (kind={self.kind!r})")
        if self.residual == "pre" and not (self.kind == "convnet" or self.kind == "mlp" and len(set(
                self.hidden_widths())) == 1):
            raise ValueError(f"residual='pre' (pre-activation blocks) is for a ConvNet, or an MLP whose hidden layers "
                             f"share one width (kind={self.kind!r}, widths {self.hidden_widths()}); residual=true adds "
                             "the skip where shapes match in any MLP or ConvNet")
        if self.kind == "convnet" and self.widths is not None:
            raise ValueError("widths is for kind='mlp'; a ConvNet takes depth (blocks) and width (channels)")
        if self.weight_variance is not None and (self.init not in ("default", "lecun_normal") or
                                                 self.init_gain is not None):
            raise ValueError(f"weight_variance={self.weight_variance} sets the weights N(0, σ_w²/fan_in) itself; "
                             f"allowed with init 'default' or 'lecun_normal' and no init_gain (given init="
                             f"{self.init!r}, init_gain={self.init_gain})")
        if self.transform != "none":
            wrong = [f"{k}={v!r}" for k, v, ok in (
                ("kind", self.kind, self.kind == "mlp"), ("norm", self.norm, self.norm == "none"),
                ("residual", self.residual, not self.residual), ("init", self.init, self.init in ("default", "suo")),
                ("init_gain", self.init_gain, self.init_gain is None),
                ("weight_variance", self.weight_variance, self.weight_variance is None),
                ("bias_init", self.bias_init, self.bias_init == 0), ("bias_std", self.bias_std, self.bias_std == 0))
                if not ok]
            if wrong:
                raise ValueError(f"transform={self.transform!r} is for a vanilla MLP with its own weights and zero "
                                 "biases: kind='mlp', norm='none', no residual, init 'default' or 'suo', no "
                                 f"init_gain or weight_variance, zero biases (given {', '.join(wrong)})")
        elif self.transform_params:
            raise ValueError(f"transform_params={self.transform_params} need a transform ('dks' or 'tat')")
        if self.bias_std > 0 and self.init in inits.DRAWN_BIAS:
            raise ValueError(f"bias_std={self.bias_std} cannot be used with init={self.init!r}, which draws its own "
                             "biases; allowed: bias_std = 0, or another init")
        return self

    @model_validator(mode="before")
    @classmethod
    def _recurrent_defaults(cls, data: Any) -> Any:
        """A recurrent cell's usual slots where none is given (the typed fields turn the names into entries):
        tanh for the state or candidate, sigmoid for the gates, tanh on the LSTM's cell."""
        if isinstance(data, dict) and isinstance(data.get("forget_bias"), str) and \
                data["forget_bias"].strip().lower() in ("none", "null", "drawn"):  # TOML and --set have no null
            data = {**data, "forget_bias": None}
        if isinstance(data, dict) and data.get("kind") == "gan" and data.get("discriminator_activation") is None:
            data = {**data, "discriminator_activation": "leaky_relu",
                    "discriminator_activation_params": data.get("discriminator_activation_params") or {"alpha": 0.2}}
        if isinstance(data, dict) and data.get("kind") in RECURRENT:
            usual = {"activation": "tanh", "gate_activation": "sigmoid" if data["kind"] != "rnn" else None,
                     "cell_activation": "tanh" if data["kind"] == "lstm" else None}
            return {**{k: v for k, v in usual.items() if v is not None and data.get(k) is None}, **{
                k: v for k, v in data.items() if v is not None or k not in usual}}
        return data

    def _check_generative(self) -> None:
        kind = self.kind
        wrong = [f"{k}={v!r}" for k, v, ok in (
            ("norm", self.norm, self.norm == "none"), ("residual", self.residual, not self.residual),
            ("transform", self.transform, self.transform == "none"),
            ("likelihood", self.likelihood, kind == "vae" or "likelihood" not in self.model_fields_set),
            ("output_activation", getattr(self.output_activation, "name", None),
             kind == "gan" or self.output_activation is None),
            ("discriminator_activation", getattr(self.discriminator_activation, "name", None),
             kind == "gan" or self.discriminator_activation is None)) if not ok]
        if wrong:
            raise ValueError(f"a {kind} takes depth and width (or widths) for its "
                             + ("encoder (the decoder mirrors it)" if kind == "vae" else "generator and discriminator")
                             + ", latent, activation, init" + (", likelihood" if kind == "vae" else
                                                                ", output_activation, discriminator_activation")
                             + f" (given {', '.join(wrong)})")
        for name, act in (("activation", self.activation), ("output_activation", self.output_activation),
                          ("discriminator_activation", self.discriminator_activation)):
            if act is not None and (act.vector or act.gated):
                raise ValueError(f"{name}={act.name!r} is {'vector-valued' if act.vector else 'gated'}; a {kind} "
                                 "takes element-wise activations (relu, leaky_relu, elu, gelu, swish, tanh, ...)")

    def _check_recurrent(self) -> None:
        kind, given = self.kind, self.model_fields_set
        drawn = self.init != "default" or self.weight_variance is not None  # else PyTorch's init draws the biases
        wrong = [f"{k}={v!r}" for k, v, ok in (
            ("widths", self.widths, self.widths is None), ("norm", self.norm, self.norm == "none"),
            ("residual", self.residual, not self.residual), ("transform", self.transform, self.transform == "none"),
            ("init", self.init, self.init in RECURRENT_INITS),
            ("bias_init", self.bias_init, self.bias_init == 0 or drawn),
            ("bias_std", self.bias_std, self.bias_std == 0 or drawn))
            if not ok]
        if wrong:
            raise ValueError(f"a {kind} takes depth (layers), width (hidden size), its activation slots, "
                             "bidirectional, readout, init (" + ", ".join(RECURRENT_INITS) + "; 'default' is "
                             "PyTorch's own, biases drawn too, so bias_init and bias_std need another init), "
                             f"init_gain, weight_variance, recurrent_init, forget_bias (given {', '.join(wrong)})")
        slots = {"gate_activation": kind != "rnn", "cell_activation": kind == "lstm"}
        for name, holds in slots.items():
            if name in given and getattr(self, name) is not None and not holds:
                raise ValueError(f"{name}={getattr(self, name).name!r}: a {kind} has no such slot; "
                                 + ("gate_activation is for gru and lstm, " if name == "gate_activation" else "")
                                 + "cell_activation is for lstm")
        if kind != "lstm" and "forget_bias" in given:
            raise ValueError(f"forget_bias={self.forget_bias}: only an LSTM has a forget gate (kind={kind!r}); in a "
                             "study whose grid mixes kinds, set it in the LSTM arms' tables")
        for name, act in (("activation", self.activation), ("gate_activation", self.gate_activation),
                          ("cell_activation", self.cell_activation)):
            if act is not None and (act.vector or act.gated):
                raise ValueError(f"{name}={act.name!r} is {'vector-valued' if act.vector else 'gated'}; every slot "
                                 f"of a {kind} cell takes an element-wise activation (sigmoid, tanh, relu, "
                                 "hard_sigmoid, identity, ...)")

    # the spelling each activation field was given ('ReLU', 'leaky-relu'): written back as given, so a stored
    # configuration, a cell's key and a resumed run are what they were before the field held the entry
    _spelling: dict[str, str] = PrivateAttr(default_factory=dict)
    _defaulted: set[str] = PrivateAttr(default_factory=set)  # slots filled with the usual choice (recurrent, gan)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_spelling(cls, data: Any, handler: Any) -> ModelConfig:
        model = handler(data)
        if isinstance(data, dict):
            if model.kind in RECURRENT:  # slots left at the cell's usual choice are written as not given, so a
                model._defaulted = {k for k in ("gate_activation", "cell_activation")  # grid may change the kind
                                    if data.get(k) is None} | ({"forget_bias"} if "forget_bias" not in data else set())
            if model.kind == "gan" and data.get("discriminator_activation") is None:  # so is the discriminator's
                model._defaulted = {"discriminator_activation", "discriminator_activation_params"}  # (a grid's own)
            for name in ("activation", "output_activation", "gate_activation", "cell_activation",
                         "discriminator_activation"):
                given = data.get(name)
                if isinstance(given, str) and given != getattr(getattr(model, name), "name", given):
                    model._spelling[name] = given
        return model

    @model_serializer(mode="wrap")
    def _write_spelling(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        for name, given in self._spelling.items():
            if name in out:
                out[name] = given
        for name in self._defaulted:
            out.pop(name, None)
        if self.kind not in RECURRENT:  # as for the transformer's fields below
            for name in RECURRENT_FIELDS:
                out.pop(name, None)
        elif self.kind != "lstm":
            for name in ("cell_activation", "forget_bias") + (("gate_activation",) if self.kind == "rnn" else ()):
                out.pop(name, None)
        if self.kind not in GENERATIVE:  # as for the recurrent fields: earlier configurations keep their keys
            for name in GENERATIVE_FIELDS:
                out.pop(name, None)
        elif self.kind == "vae":
            for name in GENERATIVE_FIELDS[2:]:
                out.pop(name, None)
        else:
            out.pop("likelihood", None)
        if self.kind != "transformer":  # at their defaults (the validator refuses others): an MLP's or ConvNet's
            for name in TRANSFORMER_FIELDS:  # configuration, and so its cell key, is what it was before them
                out.pop(name, None)
        return out

    def shape_key(self) -> dict[str, Any]:
        """Everything but the MIXABLE fields (JSON types): configurations with equal keys share every tensor shape
        (a transformer's FFN shape depends on whether its activation is gated: that is part of the key)."""
        key = self.model_dump(mode="json", exclude=set(MIXABLE))
        if self.kind == "transformer":
            key["ffn"] = [self.activation.gated, self.ffn_hidden()]
        return key

    def ffn_hidden(self) -> int:
        """A transformer's FFN hidden width (see `ffn_width`)."""
        return ffn_width(self.width, self.activation.gated, self.ffn_width)

    def hidden_widths(self) -> list[int]:
        return list(self.widths) if self.widths is not None else [self.width] * self.depth

    def checked_activation(self) -> tuple[Activation, dict[str, float]]:
        """(catalog entry, checked parameters) of the hidden activation before any transform; a transform's
        choices are checked too, but its constants not solved (seconds per depth: see resolved_activation)."""
        act = self.activation
        if act.vector:
            raise ActlabError(f"activation {act.name!r} is vector-valued (output only); it cannot be a hidden "
                              "activation")
        params = act.resolve(**self.activation_params)
        if act.gate is not None:  # a transformer's gated FFN: the element-wise part is the gate φ
            return act.gate, params
        if self.transform != "none":
            transforms.check(act, params, self.transform, self.transform_params, len(self.hidden_widths()))
        return act, params

    def resolved_activation(self) -> tuple[Activation, dict[str, float]]:
        """(catalog entry, checked parameters) of the hidden activation. Cheap to call again: a catalog name is
        a dict lookup, an import path is imported, checked and its gain measured once per process, and a
        transform's constants are solved once per machine (actlab.nn.transforms keeps them)."""
        act, params = self.checked_activation()
        if self.transform != "none":
            return transforms.transformed(act, params, self.transform, self.transform_params,
                                          len(self.hidden_widths())), {}
        return act, params

    def init_scheme(self) -> tuple[str, float]:
        """(scheme, gain): 'default' is the activation's paired scheme; gain defaults to the activation's."""
        if self.kind == "transformer":
            return "gpt2", 1.0
        if self.kind in RECURRENT:
            if self.weight_variance is not None:
                return "lecun_normal", math.sqrt(self.weight_variance)
            return ("torch", 1.0) if self.init == "default" else (self.init, self.init_gain or 1.0)
        if self.weight_variance is not None:
            return "lecun_normal", math.sqrt(self.weight_variance)
        if self.transform != "none":
            return "suo", 1.0
        act, params = self.resolved_activation()
        scheme = inits.PAIRED[act.init] if self.init == "default" else self.init
        if self.init_gain is not None:
            return scheme, self.init_gain
        if scheme in ("blobs", "normal", "torch_default"):
            return scheme, 1.0
        return scheme, act.init_gain(**params)


class Population(nn.Module):
    """M replicas of one network shape. `seeds[m]` drew replica m's initial weights; data order uses it too.

    A population may hold several *members*: configurations that differ only in MIXABLE fields (the
    activation and the init), each with every seed, replicas ordered member by member. Each member's
    replicas get its own activation and its own init, drawn from the same seeds (the paired design).
    """

    def __init__(self, cfg: ModelConfig, seeds: list[int], members: list[ModelConfig] | None = None):
        super().__init__()
        if not seeds or len(set(seeds)) != len(seeds):
            raise ActlabError(f"seeds={seeds} must be a non-empty list of distinct integers")
        members = members or [cfg]
        shape = members[0].shape_key()
        if any(mc.shape_key() != shape for mc in members):
            if any(mc.kind == "transformer" for mc in members) and len({mc.activation.gated for mc in members}) > 1:
                raise ActlabError("a gated FFN (two input projections, hidden width "
                                  f"{ffn_width(members[0].width, True, members[0].ffn_width)}) and an ungated one "
                                  "have different shapes: they train as separate populations (a study's grid does "
                                  "this itself)")
            raise ActlabError("population members must differ only in " + ", ".join(MIXABLE))
        self.cfg, self.members = members[0], members
        self.seeds, self.m = list(seeds) * len(members), len(seeds) * len(members)
        self.groups = [(mc, i * len(seeds), (i + 1) * len(seeds)) for i, mc in enumerate(members)]  # (cfg, start, stop)
        acts = [(mc.resolved_activation(), stop - start) for mc, start, stop in self.groups]
        if all(a == acts[0][0] for a, _ in acts):
            (entry, params), _ = acts[0]
            self.act = _population_activation(entry, params, self.m)
        else:
            self.act = MixedActivation([(_population_activation(e, p, n), n) for (e, p), n in acts])
        self.out_act = None if cfg.output_activation is None else cfg.output_activation.module()

    def weight_layers(self) -> list[nn.Module]:
        """Layers with a weight, input to output (PopLinear and PopConv)."""
        return [m for m in self.modules() if isinstance(m, (PopLinear, PopConv))]

    def init_weights(self) -> None:
        """Draw every weight from the replicas' seeds (layer index = position in weight_layers), member by member."""
        with torch.no_grad():
            for mc, start, stop in self.groups:
                scheme, gain = mc.init_scheme()
                seeds = self.seeds[start:stop]
                for layer_idx, layer in enumerate(self.weight_layers()):
                    per = 1 if isinstance(layer, PopLinear) else layer.out_channels  # rows of dim 0 per replica
                    one = tuple(layer.weight.shape[1:]) if per == 1 else (per, *layer.weight.shape[1:])
                    fan_in, fan_out = layer.fans
                    w = inits.draw(scheme, gain, seeds, layer_idx, one, fan_in, fan_out)
                    rows = slice(start * per, stop * per)
                    layer.weight[rows] = w.reshape(layer.weight[rows].shape)
                    if layer.bias is not None:
                        n = layer.bias[rows][0].numel() if per == 1 else per
                        b = inits.draw_bias(scheme, seeds, layer_idx, n, fan_in)
                        if b is None and mc.bias_std > 0:
                            stream = rng.stream_id("init-bias-normal", layer_idx)
                            b = mc.bias_init + mc.bias_std * rng.normal(seeds, stream, (n,))
                        layer.bias[rows] = mc.bias_init if b is None else b.reshape(layer.bias[rows].shape)

    def output(self, z: Tensor) -> Tensor:
        return z if self.out_act is None else self.out_act(z)

    def probe_groups(self) -> list[list[Tensor]]:
        """The parameters whose gradient one probe layer reports, one list per traced layer: each weight layer's
        weight (a transformer: every parameter of each block, then the final norm and head)."""
        return [[lay.weight] for lay in self.weight_layers()]

    def probe_extras(self) -> dict[str, list[str]] | None:
        """Per-replica statistics beyond the per-layer ones (a transformer's, a recurrent net's), each with its
        layer names. A forward pass given `extras` appends each statistic's per-chunk values under its name, or,
        for a gradient norm, the tensors to differentiate under '_wrt:NAME' (one list of tensors per layer name)."""
        return None

    def probe_weight_names(self) -> list[str] | None:
        """Names of the probe_groups when they are not one per traced layer (a recurrent net's: one per layer,
        its slots traced apart); None: the traced layers' names."""
        return None

    def at_step(self, epoch: int, step: int) -> None:
        """Told by the training loop before each optimizer step's forward pass (a model that draws noise, the
        VAE, keys it on the step); nothing for a deterministic model."""

    def at_examples(self, start: int) -> None:
        """Told by evaluation and probes before each chunk: its first example's position in the evaluated set."""

    def floats_per_example(self) -> int:
        """Floats of the widest layer's activation for one example of one replica (sizes evaluation chunks)."""
        raise NotImplementedError

    @staticmethod
    def _record(trace: Trace | None, name: str, z: Tensor, a: Tensor, act: nn.Module | None, canon) -> None:
        """Append (name, z, a, φ'(z)) in canonical shape; φ' by autograd on the layer's own activation."""
        if trace is None:
            return
        if act is None:
            d = torch.ones_like(z)
        else:
            with torch.enable_grad():
                zz = z.detach().requires_grad_()
                (d,) = torch.autograd.grad(act(zz).sum(), zz)
        trace.append((name, canon(z.detach()), canon(a.detach()), canon(d)))


class PopMLP(Population):
    """An MLP population; forward takes (M, B, in) per-replica batches or (B, in) shared inputs."""

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...], out_features: int,
                 members: list[ModelConfig] | None = None):
        super().__init__(cfg, seeds, members)
        self.in_rank = len(in_shape)  # images and signals are flattened
        sizes = [int(torch.tensor(in_shape).prod()), *cfg.hidden_widths()]
        bias = cfg.norm != "batch" or cfg.norm_bias
        self.hidden = nn.ModuleList(PopLinear(self.m, a, b, bias) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        norm = {"none": lambda f: nn.Identity(), "batch": lambda f: PopBatchNorm(self.m, f),
                "layer": lambda f: PopLayerNorm(self.m, f)}[cfg.norm]
        self.norms = nn.ModuleList(norm(f) for f in sizes[1:])
        self.head = PopLinear(self.m, sizes[-1], out_features)
        self._widest = max(*sizes, out_features)
        self.init_weights()

    def floats_per_example(self) -> int:
        return self._widest

    def _pre_activation(self, h: Tensor, trace: Trace | None) -> Tensor:
        """residual='pre': stem h = W₀x, blocks h ← h + Wᵢ φ(normᵢ(h)) / √L, head W φ(norm(h)). The trace records,
        for each weight layer after the stem, the activation that feeds it (hidden1 … hiddenD, the last feeding
        the head), so probes keep one entry per weight layer."""
        blocks = len(self.hidden) - 1
        scale = 1.0 / math.sqrt(max(blocks, 1))
        h = self.hidden[0](h)
        consumers = [*self.hidden[1:], self.head]
        for i, (lin, norm) in enumerate(zip(consumers, [*self.norms[1:], self.norms[0]], strict=True)):
            z = norm(h)
            a = self.act(z)
            self._record(trace, f"hidden{i + 1}", z, a, self.act, _unsqueeze)
            if lin is self.head:
                out = self.head(a)
                y = self.output(out)
                self._record(trace, "output", out, y, self.out_act, _unsqueeze)
                return y
            h = h + lin(a) * scale
        raise AssertionError("unreachable: the head ends the loop")

    def forward(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        shared = x.dim() == self.in_rank + 1  # (B, *in) shared, else (M, B, *in)
        h = x.flatten(1) if shared else x.flatten(2)
        if self.cfg.transform != "none":  # DKS/TAT: every example at unit mean square (their per-example normalisation)
            h = h * torch.rsqrt((h * h).mean(-1, keepdim=True).clamp_min(1e-12))
        if self.cfg.residual == "pre":
            return self._pre_activation(h, trace)
        for i, (lin, norm) in enumerate(zip(self.hidden, self.norms, strict=True)):
            z = norm(lin(h))
            a = self.act(z)
            self._record(trace, f"hidden{i + 1}", z, a, self.act, _unsqueeze)
            h = a + h if self.cfg.residual and h.shape == a.shape else a
        z = self.head(h)
        y = self.output(z)
        self._record(trace, "output", z, y, self.out_act, _unsqueeze)
        return y


class PopConvNet(Population):
    """Stem + `depth` Conv-BN-Act blocks + global average pool + linear, for (C, H, W) or (C, L) inputs.

    forward takes per-replica batches (M, B, C, *spatial) or shared inputs (B, C, *spatial).
    """

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...], out_features: int,
                 members: list[ModelConfig] | None = None):
        super().__init__(cfg, seeds, members)
        self.dims = len(in_shape) - 1
        if self.dims not in (1, 2):
            raise ActlabError(f"ConvNet input shape {in_shape} must be (C, L) or (C, H, W)")
        c_in, ch, m = in_shape[0], cfg.width, self.m
        bias = cfg.norm != "batch" or cfg.norm_bias
        self.convs = nn.ModuleList(PopConv(m, a, ch, 3, 1, self.dims, bias) for a in [c_in] + [ch] * cfg.depth)
        bn = nn.BatchNorm2d if self.dims == 2 else nn.BatchNorm1d  # over M·C channels: M independent BNs
        norm = {"none": lambda: nn.Identity(), "batch": lambda: bn(m * ch),
                "layer": lambda: nn.GroupNorm(m, m * ch)}[cfg.norm]  # one group per replica = its LayerNorm
        self.norms = nn.ModuleList(norm() for _ in self.convs)
        self.head = PopLinear(m, ch, out_features)
        self._widest = max(c_in, ch) * int(torch.tensor(in_shape[1:]).prod())
        self.init_weights()

    def floats_per_example(self) -> int:
        return self._widest

    def _head(self, h: Tensor, trace: Trace | None) -> Tensor:
        pooled = h.flatten(2).mean(-1)  # (B, M·C)
        pooled = pooled.reshape(pooled.shape[0], self.m, -1).transpose(0, 1)  # (M, B, C)
        z = self.head(pooled)
        y = self.output(z)
        self._record(trace, "output", z, y, self.out_act, _unsqueeze)
        return y

    def _pre_activation(self, h: Tensor, trace: Trace | None) -> Tensor:
        """residual='pre': stem h = conv₀(x), blocks h ← h + convᵢ(φ(normᵢ(h))) / √L, then φ(norm(h)) pooled into
        the head (He et al. 2016's pre-activation order, as the MLP's). The trace records the activation feeding
        each block (block1 … blockL) and the head ('final')."""
        blocks = len(self.convs) - 1
        scale = 1.0 / math.sqrt(max(blocks, 1))
        h = self.convs[0](h)
        for i, (conv, norm) in enumerate(zip([*self.convs[1:], None], [*self.norms[1:], self.norms[0]], strict=True)):
            z = norm(h)
            a = self.act(z)
            self._record(trace, f"block{i + 1}" if conv is not None else "final", z, a, self.act, self._canon)
            if conv is None:
                return self._head(a, trace)
            h = h + conv(a) * scale
        raise AssertionError("unreachable: the head ends the loop")

    def _canon(self, t: Tensor) -> Tensor:
        """(B, M·C, *spatial) -> (M, B, C, positions)."""
        b = t.shape[0]
        return t.reshape(b, self.m, -1, t[0, 0].numel()).transpose(0, 1)

    def forward(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        if x.dim() == self.dims + 3:  # (M, B, C, *spatial) -> (B, M·C, *spatial)
            x = x.transpose(0, 1).flatten(1, 2)
        else:  # shared (B, C, *spatial): the same images for every replica
            x = x.repeat(1, self.m, *([1] * self.dims))
        h = x.contiguous(memory_format=torch.channels_last) if self.dims == 2 else x
        if self.cfg.residual == "pre":
            return self._pre_activation(h, trace)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            z = norm(conv(h))
            a = self.act(z)
            self._record(trace, "stem" if i == 0 else f"block{i}", z, a, self.act, self._canon)
            h = a + h if self.cfg.residual and i > 0 else a
        return self._head(h, trace)


class PopTransformer(Population):
    """A transformer population (actlab.nn.transformer): a causal decoder on token ids (B, T) for the
    next-token task, else a ViT encoder on images or signals cut into `model.patch` patches."""

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...], out_features: int,
                 members: list[ModelConfig] | None = None, causal: bool = False, vocab: int = 0):
        super().__init__(cfg, seeds, members)
        self.in_rank = len(in_shape)
        self.core = TransformerCore(self.m, cfg.width, cfg.depth, cfg.heads, cfg.ffn_hidden(), cfg.activation.gated,
                                    cfg.norm == "rms", cfg.attention, tuple(in_shape), out_features, causal, vocab,
                                    cfg.patch)
        if cfg.norm == "none":
            for blk in self.core.blocks:
                blk.norm1, blk.norm2 = nn.Identity(), nn.Identity()
            self.core.norm = nn.Identity()
        gated, core = cfg.activation.gated, self.core
        inputs = (core.tok.shape[1] if causal else core.embed.in_features + 1) * cfg.width
        count = functools.partial(parameter_count, cfg.width, cfg.depth, vocab_in=inputs, positions=core.tokens,
                                  out=out_features, norm=cfg.norm)
        # per replica: its own count, and that of the ungated FFN at 4d it is matched with (Shazeer 2020)
        self.counts = {"parameters": sum(p[0].numel() for p in self.parameters()), "ffn_width": cfg.ffn_hidden(),
                       "ungated_ffn_width": 4 * cfg.width,
                       "ungated_parameters": count(ffn=4 * cfg.width, gated=False)}
        if self.counts["parameters"] != count(ffn=cfg.ffn_hidden(), gated=gated):
            raise AssertionError("transformer parameter count does not match its formula")
        self.init_weights()

    def init_weights(self) -> None:
        for _, start, stop in self.groups:
            self.core.init_weights(self.seeds[start:stop], slice(start, stop))

    def floats_per_example(self) -> int:
        t, d = self.core.tokens, self.cfg.width
        return t * max(3 * d, self.cfg.ffn_hidden(), self.core.head.out_features) + self.cfg.heads * t * t

    def probe_groups(self) -> list[list[Tensor]]:
        return [*(list(b.parameters()) for b in self.core.blocks),
                [*self.core.norm.parameters(), *self.core.head.parameters()]]

    def probe_extras(self) -> dict[str, list[str]]:
        names = [f"block{i + 1}" for i in range(len(self.core.blocks))]
        return {"residual_rms": names,
                "attention_entropy": [f"{n}.head{h + 1}" for n in names for h in range(self.cfg.heads)]}

    def forward(self, x: Tensor, trace: Trace | None = None, extras: dict[str, list[Tensor]] | None = None) -> Tensor:
        def record(name: str, z: Tensor, g: Tensor, b: int, t: int) -> None:  # (M, B·T, F) -> (M, B, F, T)
            self._record(trace, name, z, g, self.act, lambda v: v.view(self.m, b, t, -1).transpose(2, 3))

        out = self.core(x, self.act, None if trace is None else record, extras)
        if trace is not None:
            canon = (lambda t: t.permute(0, 1, 3, 2)) if out.dim() == 4 else _unsqueeze
            self._record(trace, "output", out, out, None, canon)
        return out


class PopRecurrent(Population):
    """A recurrent population (actlab.nn.recurrent): RNN, GRU or LSTM cells with every slot a catalog entry, on
    signals, images read row by row, or token ids (the next-token task, a head at every step)."""

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...], out_features: int,
                 members: list[ModelConfig] | None = None, vocab: int = 0):
        super().__init__(cfg, seeds, members)
        self.in_rank = len(in_shape)
        self.core = recurrent.RecurrentCore(self.m, cfg.kind, tuple(in_shape), cfg.width, cfg.depth,
                                            cfg.bidirectional, cfg.readout, out_features, vocab)
        self.slots = nn.ModuleDict({"state" if cfg.kind == "rnn" else "candidate": self.act})
        if cfg.kind != "rnn":
            self.slots["gate"] = self._slot(lambda mc: mc.gate_activation)
        if cfg.kind == "lstm":
            self.slots["cell"] = self._slot(lambda mc: mc.cell_activation)
        self.init_weights()

    def _slot(self, entry) -> nn.Module:
        """One slot's module over the replicas: each member's entry at its default parameters."""
        parts = [(entry(mc), stop - start) for mc, start, stop in self.groups]
        if all(e == parts[0][0] for e, _ in parts):
            return _population_activation(parts[0][0], parts[0][0].resolve(), self.m)
        return MixedActivation([(_population_activation(e, e.resolve(), n), n) for e, n in parts])

    def init_weights(self) -> None:
        for mc, start, stop in self.groups:
            scheme, gain = mc.init_scheme()
            self.core.init_weights(self.seeds[start:stop], slice(start, stop), scheme, gain, mc.recurrent_init,
                                   (mc.bias_init, mc.bias_std), mc.forget_bias)

    def weight_layers(self) -> list[nn.Module]:
        return []  # a recurrent cell's weights are drawn by the core, per tensor and gate block

    def floats_per_example(self) -> int:
        core = self.core
        return core.steps * (recurrent.GATES[self.cfg.kind] + 2) * core.hidden * core.dirs * len(core.layers)

    def probe_groups(self) -> list[list[Tensor]]:
        """Every parameter of each layer (both directions), then the head (the embedding with the first layer)."""
        first = [self.core.embed] if self.core.embed is not None else []
        layers = [first * (i == 0) + list(d.parameters()) for i, d in enumerate(self.core.layers)]
        return [*layers, list(self.core.head.parameters())]

    def probe_weight_names(self) -> list[str]:
        return [f"layer{i + 1}" for i in range(len(self.core.layers))] + ["output"]

    def probe_extras(self) -> dict[str, list[str]]:
        t = self.core.steps
        return {"state_grad_norm": [f"layer{i + 1}.step{s + 1}" for i in range(len(self.core.layers))
                                    for s in range(t)]}

    def forward(self, x: Tensor, trace: Trace | None = None, extras: dict[str, list] | None = None) -> Tensor:
        def record(name: str, z: Tensor, a: Tensor, act: nn.Module, b: int, t: int) -> None:  # (M, B·T, H)
            self._record(trace, name, z, a, act, lambda v: v.view(self.m, b, t, -1).transpose(2, 3))

        states: dict[str, list] | None = {} if extras is not None else None
        out = self.core(x, self.slots, None if trace is None else record, states)
        if extras is not None and states:  # per layer and step, the state of each direction: the probe's wrt
            wrt = extras.setdefault("_wrt:state_grad_norm", [])
            for dirs in states.values():
                wrt.extend(list(group) for group in zip(*dirs, strict=True))
        y = self.output(out)
        if trace is not None:
            canon = (lambda t: t.permute(0, 1, 3, 2)) if out.dim() == 4 else _unsqueeze
            self._record(trace, "output", out, y, self.out_act, canon)
        return y


class PopVAE(Population):
    """A VAE population (actlab.nn.generative): forward gives each replica's per-example reconstruction and KL terms
    of the negative ELBO, (M, B, 2) in nats, which the training loop's ELBO objective sums."""

    objective = "elbo"

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...],
                 members: list[ModelConfig] | None = None):
        super().__init__(cfg, seeds, members)
        self.in_rank = len(in_shape)
        self.core = generative.VAECore(self.m, math.prod(in_shape), cfg.hidden_widths(), cfg.latent)
        self.likelihood = cfg.likelihood  # "auto" until fit_likelihood sees the data
        self._noise: tuple = ("step", 0, 0)
        self.init_weights()

    def fit_likelihood(self, x: Tensor, name: str) -> str:
        """Resolve likelihood 'auto' from the training data `x` (bernoulli within [0, 1], else gaussian) and refuse
        bernoulli on data outside [0, 1]; returns the likelihood used."""
        lo, hi = float(x.min()), float(x.max())
        inside = lo >= 0 and hi <= 1
        if self.likelihood == "auto":
            self.likelihood = "bernoulli" if inside else "gaussian"
        elif self.likelihood == "bernoulli" and not inside:
            raise ActlabError(f"model.likelihood='bernoulli' models data in [0, 1]; dataset {name} lies in "
                              f"[{lo:.3g}, {hi:.3g}]: set the data option normalize = 'unit' (images), or "
                              "model.likelihood = 'gaussian' or 'auto'")
        return self.likelihood

    def at_step(self, epoch: int, step: int) -> None:
        self._noise = ("step", epoch, step)

    def at_examples(self, start: int) -> None:
        self._noise = ("eval", start)

    def eps(self, b: int, device: torch.device) -> Tensor:
        """(M, B, latent) ε for the current step or evaluated examples, from each replica's seed."""
        if self._noise[0] == "eval":
            return generative.example_noise(self.seeds, "vae-eval", self._noise[1], b, self.cfg.latent, device)
        return rng.normal(self.seeds, rng.stream_id("vae-noise", *self._noise[1:]), (b, self.cfg.latent), device)

    def floats_per_example(self) -> int:
        return max(self.core.data_dim, *self.cfg.hidden_widths(), 2 * self.cfg.latent)

    def probe_weight_names(self) -> list[str]:
        return [*self.core.enc_names, "latent", *self.core.dec_names, "output"]

    def forward(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        shared = x.dim() == self.in_rank + 1
        h = x.flatten(1) if shared else x.flatten(2)
        b = h.shape[-2]

        def record(name: str, z: Tensor, a: Tensor, act: nn.Module) -> None:
            self._record(trace, name, z, a, act, _unsqueeze)

        if self.likelihood == "auto":
            raise ActlabError("a vae's likelihood 'auto' is resolved from its training data (fit_likelihood) "
                              "before its first forward pass")
        return self.core.terms(h, self.eps(b, h.device), self.act, self.likelihood, record)


class PopGAN(Population):
    """A GAN population (actlab.nn.generative): `generate(z)` and `discriminate(x)`; trained by
    actlab.training.adversarial. The discriminator's activation is a slot of its own (members may differ in it)."""

    objective = "gan"

    def __init__(self, cfg: ModelConfig, seeds: list[int], in_shape: tuple[int, ...],
                 members: list[ModelConfig] | None = None):
        super().__init__(cfg, seeds, members)
        if tuple(in_shape) != (2,):
            raise ActlabError(f"a gan learns 2-D points (the ring and grid mixtures); this dataset's inputs have "
                              f"shape {tuple(in_shape)}")
        self.core = generative.GANCore(self.m, cfg.hidden_widths(), cfg.latent)
        parts = [((mc.discriminator_activation, mc.discriminator_activation.resolve(
            **mc.discriminator_activation_params)), stop - start) for mc, start, stop in self.groups]
        if all(p == parts[0][0] for p, _ in parts):
            self.d_act = _population_activation(*parts[0][0], self.m)
        else:
            self.d_act = MixedActivation([(_population_activation(e, p, n), n) for (e, p), n in parts])
        self.init_weights()

    def floats_per_example(self) -> int:
        return max(self.cfg.latent, *self.cfg.hidden_widths())

    def noise(self, tag: str, *key: int, n: int, device: torch.device) -> Tensor:
        """(M, n, latent) generator noise from each replica's seed."""
        return rng.normal(self.seeds, rng.stream_id(tag, *key), (n, self.cfg.latent), device)

    def generate(self, z: Tensor, trace: Trace | None = None) -> Tensor:
        def record(name: str, zz: Tensor, a: Tensor, act: nn.Module) -> None:
            self._record(trace, name, zz, a, act, _unsqueeze)

        return self.output(generative.run_mlp(self.core.generator, z, self.act, self.core.g_names, record))

    def discriminate(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        """(M, B) logits that x is real."""
        def record(name: str, zz: Tensor, a: Tensor, act: nn.Module) -> None:
            self._record(trace, name, zz, a, act, _unsqueeze)

        return generative.run_mlp(self.core.discriminator, x, self.d_act, self.core.d_names, record)[..., 0]

    def forward(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        """The discriminator's logits (M, B, 1) on x (the generator is `generate`)."""
        return self.discriminate(x, trace).unsqueeze(-1)


class MixedActivation(nn.Module):
    """Different activations on consecutive replica slices: (M, B, F) split on dim 0, (B, M·C, ...) on dim 1."""

    def __init__(self, parts: list[tuple[nn.Module, int]]):
        super().__init__()
        self.mods = nn.ModuleList(mod for mod, _ in parts)
        self.counts = [n for _, n in parts]
        self.m = sum(self.counts)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 3:
            pieces = torch.split(z, self.counts, dim=0)
            return torch.cat([mod(p) for mod, p in zip(self.mods, pieces, strict=True)], dim=0)
        c = z.shape[1] // self.m
        pieces = torch.split(z, [n * c for n in self.counts], dim=1)
        return torch.cat([mod(p) for mod, p in zip(self.mods, pieces, strict=True)], dim=1)


def _unsqueeze(t: Tensor) -> Tensor:
    """(M, B, F) -> (M, B, F, 1)."""
    return t.unsqueeze(-1)


def _population_activation(act: Activation, params: dict[str, float], m: int) -> nn.Module:
    """The hidden activation as a module; learnable ones get one parameter set per replica."""
    if act.name == "prelu":
        return PopPReLU(m, params["alpha"])
    module = act.module(**params)
    if any(True for _ in module.parameters()):
        raise ActlabError(f"activation {act.name!r} has learnable parameters; in a population only prelu can "
                          "(one slope per replica); use it in a single model with actlab.probe instead")
    return module


def out_features(task: str, n_classes: int) -> int:
    return n_classes if task in ("multiclass", "next_token") else 1


def build(cfg: ModelConfig | dict[str, Any] | list[ModelConfig], input_shape: tuple[int, ...], task: str,
          n_classes: int, seeds: list[int]) -> Population:
    """The population for `cfg` on inputs of `input_shape` (one example) and the dataset's task.

    A list of configurations that differ only in MIXABLE fields builds one population holding all of them,
    member by member, each with every seed.
    """
    members = [c if isinstance(c, ModelConfig) else ModelConfig(**c) for c in (cfg if isinstance(cfg, list) else [cfg])]
    first = members[0]
    k = out_features(task, n_classes)
    if task == "next_token" and first.kind not in ("transformer", *RECURRENT):
        raise ActlabError(f"the next-token task (a text corpus) needs model.kind 'transformer' or a recurrent kind "
                          f"({', '.join(RECURRENT)}), not {first.kind!r}")
    if first.kind == "vae":
        return PopVAE(first, seeds, tuple(input_shape), members)
    if first.kind == "gan":
        return PopGAN(first, seeds, tuple(input_shape), members)
    if first.kind in RECURRENT:
        return PopRecurrent(first, seeds, tuple(input_shape), k, members,
                            vocab=n_classes if task == "next_token" else 0)
    if first.kind == "transformer":
        return PopTransformer(first, seeds, tuple(input_shape), k, members, causal=task == "next_token",
                              vocab=n_classes)
    if first.kind == "mlp":
        return PopMLP(first, seeds, tuple(input_shape), k, members)
    return PopConvNet(first, seeds, tuple(input_shape), k, members)
