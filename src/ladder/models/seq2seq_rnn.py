"""A recurrent encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2015;
Luong et al. 2015), read top to bottom: the batch helpers every seq2seq module shares, the
encoder, attention, then the model.

The encoder embeds the source ids and runs stacked GRU/LSTM layers over them, each direction
reading only the real tokens: the backward direction reads every row's tokens reversed in place
(padding stays at the end), so padding never changes a result and no packed sequences are
needed (which keeps `encode` traceable for ONNX). A linear bridge turns the encoder's final
hidden states, per layer, into the decoder's first state. At each target position the decoder
RNN reads the previous target token and, with attention, a context vector (a softmax-weighted
mean of the encoder outputs over the real source positions):

- `bahdanau`: additive scores v^T tanh(W q + U h_j), the query being the decoder's previous
  top-layer state; the context feeds the RNN with the token (so training loops over time).
- `luong`: "general" scores s_t^T W h_j against the decoder's new state; the RNN reads tokens
  only, so teacher-forced training runs the whole target at once.
- `none`: the encoder speaks to the decoder only through its final states.

The logits come from tanh(Linear([state; context])) through a linear head. Scheduled sampling
(Bengio et al. 2015): with `teacher_forcing` below 1, training feeds the decoder its own greedy
prediction instead of the true previous token at that rate.
"""

from __future__ import annotations

from typing import Literal

import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field
from torch import nn  # noqa: TID253

from ladder.data.special_ids import BOS_ID, EOS_ID, PAD_ID
from ladder.models.rnn import CELLS
from ladder.models.sequence import init_embedding

State = tuple[torch.Tensor, ...]  # torch's layout: GRU (h,), LSTM (h, c), each (layers, batch, H)


class Seq2SeqRNNConfig(BaseModel):
    """Hyperparameters of the recurrent encoder-decoder; the vocabulary sizes come from the
    tokenizers (`build_seq2seq_rnn`)."""

    model_config = ConfigDict(extra="forbid")

    cell: Literal["gru", "lstm"] = Field("gru", description="the recurrent cell of both sides")
    embedding_dim: int = Field(128, ge=1, description="token vector width (source and target)")
    hidden_size: int = Field(256, ge=1, description="units per layer (and encoder direction)")
    num_layers: int = Field(1, ge=1, le=8, description="stacked layers, encoder and decoder")
    bidirectional: bool = Field(True, description="the encoder reads both ways")
    attention: Literal["bahdanau", "luong", "none"] = Field(
        "bahdanau", description="bahdanau: additive; luong: general (multiplicative); none"
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="on embeddings, between layers, output")
    teacher_forcing: float = Field(
        1.0,
        ge=0,
        le=1,
        description="share of training steps fed the true previous token; the rest get the "
        "decoder's own greedy prediction (scheduled sampling)",
    )
    shared_vocab: bool = Field(
        False, description="one embedding table for source and target (one shared tokenizer)"
    )
    max_source_length: int = Field(128, ge=1, description="the longest source, in tokens")
    max_target_length: int = Field(
        128, ge=2, description="the longest decoder input ([bos] + target), in tokens"
    )


def check_vocab_sizes(source_vocab_size: int, target_vocab_size: int, shared: bool) -> None:
    """ValueError for a vocabulary too small for the special ids, or for unequal sizes where
    one embedding table is to serve both sides (`shared`)."""
    for side, size in (("source", source_vocab_size), ("target", target_vocab_size)):
        if size <= EOS_ID:
            raise ValueError(
                f"{side} vocab_size must exceed the special ids 0..{EOS_ID}; got {size}"
            )
    if shared and source_vocab_size != target_vocab_size:
        raise ValueError(
            f"shared_vocab needs one vocabulary for both sides; got source vocab_size "
            f"{source_vocab_size} and target vocab_size {target_vocab_size}"
        )


def check_length(what: str, length: int, limit: int, name: str) -> None:
    """ValueError when `length` tokens exceed the model's `limit` (its field `name`)."""
    if length > limit:
        raise ValueError(
            f"{what} of {length} tokens is longer than {name}={limit}, the longest the model "
            f"was built for; truncate it to {limit} tokens"
        )


def split_pair(
    x: torch.Tensor, pad_id: int, max_source_length: int, max_target_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A teacher-forcing batch x (batch, 2, L) -> source ids, their mask (True at real tokens)
    and decoder input ids, each trimmed to the batch's longest real row; ValueError for a
    wrong shape or a row longer than the model's limits."""
    if x.dim() != 3 or x.shape[1] != 2:
        raise ValueError(
            f"x must be (batch, 2, length): source ids, then [bos] + target; got {tuple(x.shape)}"
        )
    src, tgt = x[:, 0], x[:, 1]
    src_mask = src != pad_id
    n_src = int(src_mask.sum(dim=1).max())
    n_tgt = int((tgt != pad_id).sum(dim=1).max())
    check_length("source", n_src, max_source_length, "max_source_length")
    check_length("decoder input ([bos] + target)", n_tgt, max_target_length, "max_target_length")
    n_src, n_tgt = max(n_src, 1), max(n_tgt, 1)  # rows are right-padded: only padding goes
    return src[:, :n_src], src_mask[:, :n_src], tgt[:, :n_tgt]


def check_position(position: torch.Tensor | int, max_target_length: int) -> None:
    """ValueError for a decoding position (an int) past the model's last target position; a
    tensor is left alone (no control flow on tensor values: `step` must trace for ONNX)."""
    if isinstance(position, int) and not 0 <= position < max_target_length:
        raise ValueError(
            f"position {position} is outside the model's target positions "
            f"0..{max_target_length - 1} (max_target_length={max_target_length})"
        )


def _reversal_index(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    """Per row (batch, seq) the time index that reverses the row's first `length` positions
    and keeps its padding in place; applying it twice gives the identity."""
    position = torch.arange(seq, device=lengths.device)[None, :]  # (1, seq)
    last = lengths[:, None] - 1  # (batch, 1)
    return torch.where(position <= last, last - position, position)  # (batch, seq)


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (batch, seq, dim) reordered along time by index (batch, seq)."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class Encoder(nn.Module):
    """Stacked one-way RNN layers per direction over embedded tokens (batch, seq, emb); the
    backward direction reads each row's real tokens reversed in place."""

    def __init__(self, config: Seq2SeqRNNConfig) -> None:
        super().__init__()
        directions = 2 if config.bidirectional else 1
        cell = CELLS[config.cell]
        width = [config.embedding_dim] + [config.hidden_size * directions] * config.num_layers
        self.forwards = nn.ModuleList(
            cell(width[i], config.hidden_size, batch_first=True) for i in range(config.num_layers)
        )
        self.backwards = nn.ModuleList(
            cell(width[i], config.hidden_size, batch_first=True)
            for i in range(config.num_layers if config.bidirectional else 0)
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, seq, emb), lengths (batch,) >= 1 -> outputs (batch, seq, directions x H)
        and each layer's final hidden states (batch, layers, directions x H): the forward
        direction's at the last real token, the backward direction's at the first."""
        index = _reversal_index(lengths, x.shape[1])  # (batch, seq)
        last = (lengths - 1)[:, None, None]  # (batch, 1, 1): where the forward pass ends
        finals = []
        for layer, forward_rnn in enumerate(self.forwards):
            if layer > 0:
                x = self.drop(x)
            # right padding comes after every real token: it cannot reach their outputs
            ahead, _ = forward_rnn(x)  # (batch, seq, H)
            outputs = [ahead]
            final = [ahead.gather(1, last.expand(-1, -1, ahead.shape[2]))[:, 0]]  # (batch, H)
            if self.backwards:
                reversed_out, _ = self.backwards[layer](_gather_time(x, index))
                back = _gather_time(reversed_out, index)  # (batch, seq, H) in source order
                outputs.append(back)
                final.append(back[:, 0])  # the backward pass ends at the first token
            x = torch.cat(outputs, dim=-1)  # (batch, seq, directions x H)
            finals.append(torch.cat(final, dim=-1))
        return x, torch.stack(finals, dim=1)


class Attention(nn.Module):
    """Scores the encoder positions against decoder queries and returns the context: the
    softmax-weighted mean of the encoder outputs over the real source positions."""

    def __init__(self, kind: str, query_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.kind = kind
        # both kinds project the encoder outputs once per source (`encode`), not per step
        self.key = nn.Linear(memory_dim, query_dim, bias=False)
        if kind == "bahdanau":
            self.query = nn.Linear(query_dim, query_dim)
            self.energy = nn.Linear(query_dim, 1, bias=False)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """query (batch, T, Q), keys (batch, S, Q), values (batch, S, D), mask (batch, S) True
        at real tokens -> context (batch, T, D)."""
        if self.kind == "bahdanau":
            hidden = torch.tanh(self.query(query)[:, :, None] + keys[:, None])  # (b, T, S, Q)
            scores = self.energy(hidden).squeeze(-1)  # (batch, T, S)
        else:
            scores = query @ keys.transpose(1, 2)  # (batch, T, S)
        # the smallest float rather than -inf: an all-padding row stays finite
        # an empty source still attends to its first position, so padding width never counts
        first = torch.arange(mask.shape[1], device=mask.device) == 0
        visible = mask | first[None, :]
        scores = scores.masked_fill(~visible[:, None, :], torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1) @ values  # (batch, T, D)


class Seq2SeqRNN(nn.Module):
    """Source ids -> (bi)RNN encoder -> bridge -> attentional RNN decoder -> target logits.

    memory (`encode`): (outputs (batch, S, D), keys (batch, S, H), finals (batch, layers, D))
    with D = directions x hidden_size; keys are the outputs projected for attention (the
    outputs themselves with `attention: none`, unused). past / present (`step`): the decoder's
    state, GRU (h,), LSTM (h, c), each (batch, num_layers, hidden_size)."""

    def __init__(self, config: Seq2SeqRNNConfig, source_vocab_size: int, vocab_size: int) -> None:
        super().__init__()
        check_vocab_sizes(source_vocab_size, vocab_size, config.shared_vocab)
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID
        self.source_vocab_size, self.vocab_size = source_vocab_size, vocab_size
        self.max_source_length = config.max_source_length
        self.max_target_length = config.max_target_length
        memory_dim = config.hidden_size * (2 if config.bidirectional else 1)
        self.source_embedding = nn.Embedding(source_vocab_size, config.embedding_dim, PAD_ID)
        init_embedding(self.source_embedding)
        self.target_embedding = self.source_embedding
        if not config.shared_vocab:
            self.target_embedding = nn.Embedding(vocab_size, config.embedding_dim, PAD_ID)
            init_embedding(self.target_embedding)
        self.encoder = Encoder(config)
        self.n_states = 2 if config.cell == "lstm" else 1  # LSTM: h and c
        self.bridge = nn.Linear(memory_dim, self.n_states * config.hidden_size)
        self.attention = None
        context_dim = 0
        if config.attention != "none":
            self.attention = Attention(config.attention, config.hidden_size, memory_dim)
            context_dim = memory_dim
        feeds_context = config.attention == "bahdanau"
        self.decoder = CELLS[config.cell](
            config.embedding_dim + (memory_dim if feeds_context else 0),
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.combine = nn.Linear(config.hidden_size + context_dim, config.hidden_size)
        self.head = nn.Linear(config.hidden_size, vocab_size)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, 2, L) int64: source ids, then [bos] + target, padded with pad_id ->
        logits (batch, L, vocab_size) for every decoder position (zeros past the longest)."""
        src, src_mask, tgt = split_pair(
            x, self.pad_id, self.max_source_length, self.max_target_length
        )
        memory = self.encode(src, src_mask)
        state = self._first_state(memory)
        sampling = self.training and self.config.teacher_forcing < 1
        if self.config.attention == "bahdanau" or sampling:
            logits = self._decode_loop(tgt, memory, src_mask, state, sampling)
        else:  # the RNN reads only tokens: the whole target at once
            out, _ = self.decoder(self.drop(self.target_embedding(tgt)), self._torch(state))
            logits = self._readout(out, memory, src_mask)
        return F.pad(logits, (0, 0, 0, x.shape[2] - logits.shape[1]))  # (batch, L, vocab)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """src (batch, S) int64, src_mask (batch, S) True at real tokens -> memory (outputs,
        keys, finals); ValueError when S exceeds max_source_length."""
        check_length("source", src.shape[1], self.max_source_length, "max_source_length")
        lengths = src_mask.sum(dim=1).clamp(min=1)  # (batch,)
        outputs, finals = self.encoder(self.drop(self.source_embedding(src)), lengths)
        keys = outputs if self.attention is None else self.attention.key(outputs)
        return outputs, keys, finals

    def initial_past(
        self, memory: tuple[torch.Tensor, ...], src_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The decoder's first state from the encoder's final states: GRU (h,), LSTM (h, c),
        each (batch, num_layers, hidden_size)."""
        return tuple(s.transpose(0, 1).contiguous() for s in self._first_state(memory))

    def step(
        self,
        tokens: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        past: tuple[torch.Tensor, ...],
        position: torch.Tensor | int,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One decoder step: tokens (batch, 1), the state after the earlier ones -> logits
        (batch, vocab_size) of the next token and the new state (same layout as past).
        `position` (unused by a recurrent model) is checked when an int."""
        check_position(position, self.max_target_length)
        state = tuple(s.transpose(0, 1).contiguous() for s in past)  # (layers, batch, H)
        logits, state = self._step(tokens, memory, src_mask, state)
        return logits[:, 0], tuple(s.transpose(0, 1).contiguous() for s in state)

    def _first_state(self, memory: tuple[torch.Tensor, ...]) -> State:
        """The bridge: finals (batch, layers, D) -> the decoder state in torch's layout."""
        bridged = self.bridge(memory[2]).transpose(0, 1)  # (layers, batch, n_states x H)
        if self.n_states == 1:
            return (torch.tanh(bridged).contiguous(),)
        h, c = bridged.chunk(2, dim=-1)  # the cell state is unbounded, as an LSTM's is
        return torch.tanh(h).contiguous(), c.contiguous()

    def _torch(self, state: State) -> torch.Tensor | State:
        """The state as nn.GRU / nn.LSTM take it: a tensor, or the (h, c) pair."""
        return state[0] if self.n_states == 1 else state

    def _step(
        self,
        tokens: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        state: State,
    ) -> tuple[torch.Tensor, State]:
        """tokens (batch, 1), state in torch's layout -> logits (batch, 1, vocab), new state."""
        outputs, keys, _ = memory
        embedded = self.drop(self.target_embedding(tokens))  # (batch, 1, emb)
        if self.attention is not None and self.config.attention == "bahdanau":
            query = state[0][-1][:, None]  # (batch, 1, H): the previous top-layer state
            context = self.attention(query, keys, outputs, src_mask)  # (batch, 1, D)
            out, new = self.decoder(torch.cat((embedded, context), dim=-1), self._torch(state))
            logits = self._head(out, context)
        else:
            out, new = self.decoder(embedded, self._torch(state))
            logits = self._readout(out, memory, src_mask)
        return logits, ((new,) if self.n_states == 1 else tuple(new))

    def _decode_loop(
        self,
        tgt: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        state: State,
        sampling: bool,
    ) -> torch.Tensor:
        """Teacher forcing one position at a time; with `sampling`, each position after the
        first reads the previous greedy prediction instead at rate 1 - teacher_forcing."""
        steps: list[torch.Tensor] = []
        for t in range(tgt.shape[1]):
            tokens = tgt[:, t : t + 1]  # (batch, 1)
            if sampling and t > 0:
                own = steps[-1].argmax(dim=-1)  # (batch, 1), no gradient through the choice
                true = torch.rand(tokens.shape, device=tokens.device) < self.config.teacher_forcing
                tokens = torch.where(true, tokens, own)
            logits, state = self._step(tokens, memory, src_mask, state)
            steps.append(logits)
        return torch.cat(steps, dim=1)  # (batch, T, vocab)

    def _readout(
        self, out: torch.Tensor, memory: tuple[torch.Tensor, ...], src_mask: torch.Tensor
    ) -> torch.Tensor:
        """Decoder outputs (batch, T, H) -> logits, attending with them as queries (luong)."""
        context = None
        if self.attention is not None:
            context = self.attention(out, memory[1], memory[0], src_mask)  # (batch, T, D)
        return self._head(out, context)

    def _head(self, out: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """tanh(Linear([state; context])) -> dropout -> Linear to the vocabulary."""
        features = out if context is None else torch.cat((out, context), dim=-1)
        return self.head(self.drop(torch.tanh(self.combine(features))))  # (batch, T, vocab)


def build_seq2seq_rnn(
    config: Seq2SeqRNNConfig, source_vocab_size: int, target_vocab_size: int
) -> Seq2SeqRNN:
    """A recurrent encoder-decoder from `source_vocab_size` to `target_vocab_size` token ids."""
    return Seq2SeqRNN(config, source_vocab_size, target_vocab_size)
