"""The protocol tab of the patient chart: edit, check, sign and look back at a patient's protocol.

The physician picks a template, adjusts every value, and sees as they type: the sig, the doses
in mg and mg/kg (from the chart's latest weight, with its date), the dosing calendar, and every
validation message in words next to its field. Errors block signing; each warning needs a tick.
Sign is enabled only for physicians, only when nothing blocks it, and only over a current signed
interaction review; otherwise a line says why. Signed versions are read-only: "Edit" starts a
new draft. The History tab lists versions with signer and time and shows a diff of any two.

This window holds the state (what is loaded, what is shown, whether it is editable) and the
actions; the pieces it composes each own one job: ``ProtocolHeader`` (status, review, template
picker), ``ExampleValuesBanner``, ``ProtocolForm`` (the fields), ``ProtocolSignPanel`` (doses,
sig, checks, Save / Sign), ``ProtocolCalendarTable`` and ``ProtocolHistory`` (versions, diff).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QInputDialog,
    QLabel,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.core.practice_limits import PracticeLimits
from ketadesk.core.protocol_templates import ProtocolTemplate
from ketadesk.core.protocol_validation import ValidationMessage, validate_protocol
from ketadesk.core.protocols import Protocol, WeightReading
from ketadesk.storage.patients.patient_records import load_patient
from ketadesk.storage.patients.patients import change_status
from ketadesk.storage.practice.practice_limits_store import (
    get_practice_limits,
)
from ketadesk.storage.practice.practice_templates import (
    all_templates,
)
from ketadesk.storage.protocols import protocols as store
from ketadesk.storage.protocols.draft_versions import DraftChangedError
from ketadesk.storage.protocols.protocol_versions import (
    PatientProtocolInfo,
    ProtocolVersionInfo,
    chart_weight,
    patient_protocols,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog
from ketadesk.ui.common.ops import show_error
from ketadesk.ui.protocol.protocol_calendar_table import ProtocolCalendarTable
from ketadesk.ui.protocol.protocol_conflicts import ProtocolConflicts
from ketadesk.ui.protocol.protocol_example_banner import ExampleValuesBanner
from ketadesk.ui.protocol.protocol_form import ProtocolForm
from ketadesk.ui.protocol.protocol_header import ProtocolHeader
from ketadesk.ui.protocol.protocol_history import ProtocolHistory
from ketadesk.ui.protocol.protocol_sign_panel import ProtocolSignPanel


@dataclass(frozen=True)
class _Loaded:
    course: PatientProtocolInfo | None
    last_course: PatientProtocolInfo | None
    limits: PracticeLimits
    weight: WeightReading | None
    review: store.ReviewGate
    templates: tuple[ProtocolTemplate, ...]


def _today() -> date:
    return datetime.now().astimezone().date()


class ProtocolEditor(QWidget):
    """The protocol tab for one patient. Takes the AppContext and the patient's id.

    Signals carry the patient id: ``protocol_saved`` after a draft is saved (or a new draft is
    started from a signed version), ``protocol_signed`` after signing, ``protocol_discontinued``
    after discontinuing; ``protocol_loaded`` each time the tab has (re)read the database;
    ``patient_activated`` when, after signing for a patient in Screening, the physician
    accepts the offer (``activation_question``) to mark them Active.
    """

    protocol_saved = Signal(int)
    protocol_signed = Signal(int)
    patient_activated = Signal(int)
    protocol_discontinued = Signal(int)
    protocol_loaded = Signal(int)
    #: Forwarded from the sign panel's link: the window opens the practice limits page.
    practice_limits_requested = Signal()

    def __init__(self, context: AppContext, patient_id: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.patient_id = patient_id
        self._loaded: _Loaded | None = None
        self._template_name = ""
        self._editing: ProtocolVersionInfo | None = None  # draft in the form
        self._shown: ProtocolVersionInfo | None = None  # version in the form
        self._editable = False
        self._dirty = False
        self.activation_question: QMessageBox | None = None
        self._messages: list[ValidationMessage] = []
        self._parse_problems: list[tuple[str, str]] = []
        self._protocol: Protocol | None = None
        self._start: date | None = None
        self._edits = 0  # counts edits, so a reload never overwrites newer typing
        self._own_reloads = 0
        self._revalidate_timer = QTimer(self)
        self._revalidate_timer.setSingleShot(True)
        self._revalidate_timer.setInterval(120)
        self._build()
        # The version the form was loaded from; a save over a newer one compares.
        self.conflicts = ProtocolConflicts(self)
        self._connect_signals()
        self.reload()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        self.header = ProtocolHeader()
        outer.addWidget(self.header)
        self.example_banner = ExampleValuesBanner()
        outer.addWidget(self.example_banner)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Why the protocol was not saved")
        self.note.setStyleSheet("color: #b00020;")
        self.note.hide()
        outer.addWidget(self.note)

        self.form = ProtocolForm()
        self.sign_panel = ProtocolSignPanel()
        self.calendar = ProtocolCalendarTable()
        self.history = ProtocolHistory()
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.sign_panel, "Check && sign")
        self.side_tabs.addTab(self.calendar, "Calendar")
        self.side_tabs.addTab(self.history, "History")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.form)
        splitter.addWidget(self.side_tabs)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([620, 640])
        outer.addWidget(splitter, 1)

        # The widgets callers and tests reach through the editor.
        self.status_label = self.header.status_label
        self.review_label = self.header.review_label
        self.edit_button = self.header.edit_button
        self.discontinue_button = self.header.discontinue_button
        self.forms = self.form.forms
        self.dose_label = self.sign_panel.dose_label
        self.sig_label = self.sign_panel.sig_label
        self.sign_reason_label = self.sign_panel.sign_reason_label
        self.save_button = self.sign_panel.save_button
        self.sign_button = self.sign_panel.sign_button
        self.calendar_table = self.calendar.table
        self.history_list = self.history.history_list
        self.course_label = self.history.course_label

    def _connect_signals(self) -> None:
        self.form.changed.connect(self._on_edited)
        self._revalidate_timer.timeout.connect(self.revalidate)
        self.example_banner.confirm_button.clicked.connect(self.confirm_example_values)
        self.header.template_chosen.connect(self.use_template)
        self.header.edit_button.clicked.connect(self.start_new_draft)
        self.header.discontinue_button.clicked.connect(self._ask_discontinue)
        self.sign_panel.save_button.clicked.connect(self.save_draft)
        self.sign_panel.sign_button.clicked.connect(self.sign)
        self.sign_panel.acknowledgements_changed.connect(self._update_sign_state)
        self.sign_panel.practice_limits_requested.connect(self.practice_limits_requested)
        self.context.data_changed.connect(self._on_data_changed)
        self.context.actor_changed.connect(self.reload)

    # ------------------------------------------------------------------ loading

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def can_edit(self) -> bool:
        return self.context.can(Permission.EDIT_CLINICAL)

    def reload(self) -> None:
        """Read the patient's protocols, limits, weight, review and templates again."""
        patient_id = self.patient_id

        def work() -> _Loaded:
            with self.context.db.session() as session:
                courses = patient_protocols(session, patient_id)
                active = next((c for c in courses if c.is_active), None)
                return _Loaded(
                    course=active,
                    last_course=courses[0] if courses else None,
                    limits=get_practice_limits(session),
                    weight=chart_weight(session, patient_id),
                    review=store.review_gate(session, patient_id),
                    templates=all_templates(session),
                )

        started_at = self._edits
        self._own_reloads += 1

        def done(loaded: _Loaded) -> None:
            self._own_reloads -= 1
            if self._dirty and self._edits != started_at:
                # The physician typed while this was loading: keep their edits.
                self._loaded = replace(loaded, course=self._loaded.course if self._loaded
                                       else loaded.course)
                self.revalidate()
                return
            self._show_loaded(loaded)

        self.context.ops.run(work, done, parent_widget=self)

    def _on_data_changed(self, what: str) -> None:
        if what == "protocols" and self._own_reloads:
            return  # this tab's own change; its reload is already on the way
        if what in ("settings", "reviews", "protocols", f"patient:{self.patient_id}"):
            if not self._dirty:
                self.reload()
            elif self._loaded is not None and what != "protocols":
                self._refresh_context_only()

    def _refresh_context_only(self) -> None:
        """Reload limits, weight and review without replacing the physician's unsaved edits."""
        patient_id = self.patient_id

        def work() -> tuple[PracticeLimits, WeightReading | None, store.ReviewGate]:
            with self.context.db.session() as session:
                return (get_practice_limits(session),
                        chart_weight(session, patient_id),
                        store.review_gate(session, patient_id))

        def done(result: tuple[PracticeLimits, WeightReading | None, store.ReviewGate]) -> None:
            if self._loaded is not None:
                limits, weight, review = result
                self._loaded = replace(self._loaded, limits=limits, weight=weight, review=review)
                self.revalidate()

        self.context.ops.run(work, done, parent_widget=self)

    def _show_loaded(self, loaded: _Loaded) -> None:
        self._loaded = loaded
        self.header.show_templates(loaded.templates)
        course = loaded.course
        self.sign_panel.clear_acknowledgements()
        if course is not None and course.draft is not None and course.latest == course.draft:
            self._show_version(course.draft, editable=self.can_edit)
        elif course is not None and course.latest is not None:
            self._show_version(course.latest, editable=False)
        else:
            self._editing = None
            self._shown = None
            first = loaded.templates[0] if loaded.templates else None
            if first is not None:
                self._load_protocol(first.protocol, _today(), first.name)
            self._editable = self.can_edit
        self._dirty = False
        self.conflicts.remember(self._shown)
        self._apply_state()
        self.history.show_history(loaded.course or loaded.last_course,
                                  offer_form=self._editable)
        self.revalidate()
        self.protocol_loaded.emit(self.patient_id)

    def _show_version(self, version: ProtocolVersionInfo, *, editable: bool) -> None:
        self._shown = version
        self._editing = version if not version.is_signed else None
        self._load_protocol(version.protocol, version.start_date, version.template_name)
        self._editable = editable and not version.is_signed

    def _load_protocol(self, protocol: Protocol, start: date, template_name: str) -> None:
        self._template_name = template_name
        self.header.select_template(template_name)
        self.form.load(protocol, start)

    # ------------------------------------------------------------------ state

    def _apply_state(self) -> None:
        loaded = self._loaded
        course = loaded.course if loaded else None
        self.form.set_read_only(not self._editable)
        can_edit = self.can_edit
        self.header.set_template_choice_enabled(self._editable)
        self.save_button.setEnabled(self._editable)
        shown_signed = self._shown is not None and self._shown.is_signed
        self.edit_button.setVisible(can_edit and course is not None and shown_signed)
        self.discontinue_button.setVisible(can_edit and course is not None)
        if loaded is not None:
            self.header.show_review(loaded.review)
        self.status_label.setText(self._status_words())

    def _status_words(self) -> str:
        loaded = self._loaded
        if loaded is None:
            return "Loading…"
        prefix = "" if self.can_edit else "Read-only (only physicians change protocols). "
        course = loaded.course
        if course is None:
            last = loaded.last_course
            if last is not None and last.discontinued_at is not None:
                return (f"{prefix}No active protocol: the last one was discontinued on "
                        f"{last.discontinued_at:%Y-%m-%d} by {last.discontinued_by}. "
                        + ("Start a new one from a template." if self.can_edit else ""))
            if not self.can_edit:
                return f"{prefix}This patient has no protocol yet."
            return ("New protocol (not saved yet): choose a template, review every value, "
                    "save a draft, then sign.")
        shown = self._shown
        if shown is None:
            return prefix
        if shown.is_signed:
            return f"{prefix}{shown.label}. Signed versions cannot be changed."
        signed = course.latest_signed
        in_force = f" In force: version {signed.number}." if signed is not None else ""
        verb = "Editing" if self._editable else "Showing"
        return f"{prefix}{verb} {shown.label[0].lower()}{shown.label[1:]}.{in_force}"

    # ------------------------------------------------------------------ checking

    def _on_edited(self) -> None:
        self._edits += 1
        self._dirty = True
        self._revalidate_timer.start()

    def revalidate(self) -> None:
        """Read the form, validate it against the practice limits and the chart weight, and
        refresh messages, sig, doses, calendar and the Sign button."""
        self._revalidate_timer.stop()
        loaded = self._loaded
        if loaded is None:
            return
        protocol, start, problems = self.form.read()
        self._protocol = protocol
        self._start = start
        self._parse_problems = problems
        today = _today()
        self._messages = (
            validate_protocol(protocol, loaded.limits, loaded.weight, today)
            if protocol is not None else []
        )
        self.example_banner.setVisible(protocol is not None and protocol.example_values)
        self.example_banner.confirm_button.setEnabled(self._editable)
        self.form.show_messages(self._parse_problems, self._messages)
        self._show_checks()
        self.sign_panel.show_doses(protocol, loaded.weight, start, today)
        self.calendar.show_calendar(protocol, loaded.weight, start, today)
        self._update_sign_state()
        self.history.show_form(protocol, start, loaded.weight)

    def _show_checks(self) -> None:
        may_acknowledge = self._editable and self.context.can(Permission.SIGN)
        self.sign_panel.show_checks(self._parse_problems, self._messages,
                                    may_acknowledge=may_acknowledge)

    def acknowledge_all_warnings(self) -> None:
        """Tick every warning (the physician's acknowledgement)."""
        self.sign_panel.acknowledge({m.code for m in self._messages if m.level == "warning"})
        self._show_checks()
        self._update_sign_state()

    def sign_blockers(self) -> list[str]:
        """Sentences saying why Sign is disabled (empty when it is enabled)."""
        loaded = self._loaded
        if loaded is None:
            return ["Loading…"]
        reasons: list[str] = []
        if not self.context.can(Permission.SIGN):
            return ["Only physicians may sign a protocol."]
        if not self._editable:
            if self._shown is not None and self._shown.is_signed:
                return ["This version is signed; choose \"Edit (new draft)\" to change it."]
            return ["This protocol cannot be edited."]
        if self._parse_problems:
            reasons.append("Fix the fields marked in red.")
        check = store.SigningCheck(tuple(self._messages), loaded.weight, loaded.review,
                                   may_sign=True)
        reasons.extend(check.blockers(self.sign_panel.acknowledged))
        return reasons

    def _update_sign_state(self) -> None:
        self.sign_panel.show_sign_state(self.sign_blockers(), editable=self._editable)

    # ------------------------------------------------------------------ actions

    def confirm_example_values(self) -> None:
        """The physician confirms they reviewed a template's example values."""
        if not self._editable:
            return
        self.form.mark_example_values_reviewed()
        self._edits += 1
        self._dirty = True
        self.revalidate()

    def use_template(self, name: str) -> None:
        """Fill the form with the named template (not saved until "Save draft")."""
        if self._loaded is None or not self._editable:
            return
        template = next((t for t in self._loaded.templates if t.name == name), None)
        if template is None:
            return
        _protocol, start, _problems = self.form.read()
        self._load_protocol(template.protocol, start or _today(), template.name)
        self._edits += 1
        self._dirty = True
        self.revalidate()

    def save_draft(self) -> None:
        protocol, start = self._readable_or_warn()
        if protocol is None or start is None:
            return
        patient_id, template_name, actor = self.patient_id, self._template_name, \
            self.context.actor

        expected = self.conflicts.mark

        def work() -> ProtocolVersionInfo:
            with self.context.db.session() as session:
                return store.save_draft(session, actor, patient_id, protocol, start,
                                        template_name=template_name, expected=expected)

        def done(version: ProtocolVersionInfo) -> None:
            self._saved(version)
            self.protocol_saved.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, on_failure=self._save_failed, changes="protocols",
                             parent_widget=self)

    def _saved(self, version: ProtocolVersionInfo) -> None:
        self._dirty = False
        self.note.hide()
        self.conflicts.remember(version)

    def _save_failed(self, error: BaseException) -> None:
        if isinstance(error, DraftChangedError):
            self.conflicts.compare_with_stored(error)
        else:
            show_error(self, error)

    @property
    def conflict_dialog(self) -> EditConflictDialog | None:
        """The open "Someone else saved this protocol" screen, if any."""
        return self.conflicts.dialog

    def show_note(self, message: str) -> None:
        """Say, above the form, why what is typed was not saved."""
        self.note.setText(message)
        self.note.show()

    def sign(self) -> None:
        """Save the form as the draft and sign it, in one step (refused with a dialog when a
        rule is not met; the storage layer checks every rule again)."""
        if self.sign_blockers():
            return
        protocol, start = self._readable_or_warn()
        if protocol is None or start is None:
            return
        patient_id, template_name, actor = self.patient_id, self._template_name, \
            self.context.actor
        acknowledged = set(self.sign_panel.acknowledged)
        today = _today()
        if not self._confirm_interruptive_flags():
            return
        expected = self.conflicts.mark

        def work() -> tuple[ProtocolVersionInfo, str]:
            with self.context.db.session() as session:
                draft = store.save_draft(session, actor, patient_id, protocol, start,
                                         template_name=template_name, expected=expected)
                signed = store.sign_version(session, actor, draft.version_id,
                                            acknowledged_warnings=acknowledged, today=today)
                return signed, load_patient(session, patient_id).status

        def done(result: tuple[ProtocolVersionInfo, str]) -> None:
            version, status = result
            self._saved(version)
            self.protocol_signed.emit(patient_id)
            self.reload()
            if status == "screening":
                self._offer_activation(version)

        self.context.ops.run(work, done, on_failure=self._save_failed, changes="protocols",
                             parent_widget=self)

    def _offer_activation(self, version: ProtocolVersionInfo) -> None:
        """A protocol was signed for a patient still marked Screening: offer to make them
        Active. Either way its dose rules and monitoring apply from its start date (see
        ``storage.outcomes.monitoring_plans.MONITORED_WITH_SIGNED_PROTOCOL``)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Start treatment?")
        box.setText(
            f"Version {version.number} is signed. This patient is still marked "
            "\"Screening\". Mark them \"Active\" (in treatment) now?"
        )
        box.setInformativeText(
            f"The protocol's dose rules and check-in schedule apply from "
            f"{version.start_date.isoformat()} either way; the status tells the practice "
            "that treatment has started."
        )
        make_active = box.addButton("Mark Active", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep Screening", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(make_active)
        self.activation_question = box
        patient_id, actor = self.patient_id, self.context.actor

        def answered(button: QAbstractButton) -> None:
            self.activation_question = None
            if button is not make_active:
                return

            def work() -> str:
                with self.context.db.session() as session:
                    return change_status(
                        session, actor, patient_id, "active",
                        f"Protocol version {version.number} signed; treatment starting",
                    ).status

            self.context.ops.run(
                work, lambda _status: self.patient_activated.emit(patient_id),
                changes=f"patient:{patient_id}", parent_widget=self,
            )

        box.buttonClicked.connect(answered)
        box.open()

    def _confirm_interruptive_flags(self) -> bool:
        """The practice's interruptive alert: flags of the signed review at or above the
        threshold are shown in a modal that must be confirmed before signing."""
        from ketadesk.storage.reviews.interaction_reviews import (
            interrupt_threshold,
            latest_signed_review,
        )
        from ketadesk.ui.review.interruptive_alert import confirm_interruptive_flags

        with self.context.db.session() as session:
            review = latest_signed_review(session, self.patient_id)
            threshold = interrupt_threshold(session)
        if review is None:
            return True  # signing is refused later, with the reason, by the review gate
        return confirm_interruptive_flags(self, review.flags, str(threshold))

    def start_new_draft(self) -> None:
        """Edit a signed protocol: a new draft copied from it (the signed version stays)."""
        patient_id, actor = self.patient_id, self.context.actor

        def work() -> ProtocolVersionInfo:
            with self.context.db.session() as session:
                return store.create_draft_from_previous(session, actor, patient_id,
                                                        start_date=None)

        def done(_version: ProtocolVersionInfo) -> None:
            self._dirty = False
            self.protocol_saved.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def _ask_discontinue(self) -> None:
        reason, ok = QInputDialog.getMultiLineText(
            self, "Discontinue protocol",
            "Why is this protocol being discontinued? (kept with the protocol)")
        if ok:
            self.discontinue(reason)

    def discontinue(self, reason: str) -> None:
        loaded = self._loaded
        if loaded is None or loaded.course is None:
            return
        protocol_id, patient_id, actor = loaded.course.protocol_id, self.patient_id, \
            self.context.actor

        def work() -> PatientProtocolInfo:
            with self.context.db.session() as session:
                return store.discontinue_protocol(session, actor, protocol_id, reason)

        def done(_course: PatientProtocolInfo) -> None:
            self._dirty = False
            self.protocol_discontinued.emit(patient_id)
            self.reload()

        self.context.ops.run(work, done, changes="protocols", parent_widget=self)

    def _readable_or_warn(self) -> tuple[Protocol | None, date | None]:
        self.revalidate()
        if self._protocol is None or self._start is None:
            show_error(self, UserFacingError("Some values cannot be read; fix the fields "
                                             "marked in red first."))
            return None, None
        return self._protocol, self._start

    # ------------------------------------------------------------------ history

    def show_diff(self, from_number: int, to_number: int) -> str:
        """Select two versions by number and return the diff text shown."""
        return self.history.show_diff(from_number, to_number)
