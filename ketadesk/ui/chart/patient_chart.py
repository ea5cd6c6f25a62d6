"""One patient's chart: demographics, medications, conditions and allergies, vitals, status.

Later features add their own tabs with ``add_tab(title, widget)``. Demographics are edited in
place and saved with Ctrl+S; list entries (medications, conditions, vitals) are saved as soon
as they are added, each in its own transaction and audit event. Each tab's widgets live in its
own module (``chart_*_tab.py``), the list-entry actions in ``chart_entries``, and what happens
when another workstation saved first in ``chart_conflicts`` (the details) and
``chart_entry_conflicts`` (a list line); this widget saves, loads and applies permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.audit_actions import PATIENT_VIEWED
from ketadesk.core.demographics import (
    PatientDemographics,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.chart_versions import ChartChangedError
from ketadesk.storage.patients.entry_versions import EntryChangedError
from ketadesk.storage.patients.patient_import import external_id_for
from ketadesk.storage.patients.patient_records import (
    PatientRecord,
)
from ketadesk.storage.server.live_updates import PATIENT
from ketadesk.storage.visits.visit_leases import VisitMarker, patients_on_visit
from ketadesk.ui.chart.chart_conditions_tab import ConditionsTab
from ketadesk.ui.chart.chart_conflicts import ChartConflicts
from ketadesk.ui.chart.chart_demographics_tab import DemographicsTab
from ketadesk.ui.chart.chart_entries import ChartEntries
from ketadesk.ui.chart.chart_entry_conflicts import EntryConflicts
from ketadesk.ui.chart.chart_medications_tab import MedicationsTab
from ketadesk.ui.chart.chart_vitals_tab import VitalsTab
from ketadesk.ui.chart.outside_change_notice import OutsideChangeNotice
from ketadesk.ui.chart.stop_medication_dialog import StopMedicationDialog
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.edit_conflict_dialog import EditConflictDialog
from ketadesk.ui.common.elided_label import ElidedLabel
from ketadesk.ui.visits.visit_words import lease_words

PHYSICIANS_ONLY = "Only physicians may do this."
SAVE_FIRST = "Save the new patient first (Ctrl+S); then this can be added."
NEW_PATIENT_NOTE = (
    "New patient: fill in the details and press Save (Ctrl+S). Medications, conditions, "
    "allergies, vitals and the treatment status open as soon as the patient is saved, because "
    "each entry is recorded against the saved chart."
)


class PatientChart(QWidget):
    """The chart of ``patient_id``, or an empty form for a new patient when it is None."""

    patient_saved = Signal(int)

    def __init__(
        self, context: AppContext, patient_id: int | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.patient_id = patient_id
        self.record: PatientRecord | None = None
        self._dirty = False
        #: The open "Stop this medication?" dialog, if any.
        self.stop_dialog: StopMedicationDialog | None = None
        # What the details showed when loaded; a save names its version, and meeting a
        # newer one compares (the "Someone else saved this chart" screen).
        self.conflicts = ChartConflicts(self)
        # A list line changed elsewhere meanwhile ("Someone else changed this line").
        self.entry_conflicts = EntryConflicts(self)
        self.entries = ChartEntries(self)
        self.setWindowTitle("New patient" if patient_id is None else "Patient chart")

        self.title = ElidedLabel("New patient")
        self.title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self.title.setAccessibleName("Patient")
        self.external_id_label = QLabel()
        self.external_id_label.setAccessibleName("Record number in the previous system")
        self.external_id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.external_id_label.setVisible(False)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020;")
        self.banner.setVisible(False)
        self.visit_notice = QLabel()
        self.visit_notice.setWordWrap(True)
        self.visit_notice.setAccessibleName("On a visit laptop")
        self.visit_notice.setStyleSheet(
            "background: #e5f1fb; border: 1px solid #0063b1; padding: 6px;"
        )
        self.visit_notice.setVisible(False)
        self.outside_change = OutsideChangeNotice()
        self.new_patient_note = QLabel(NEW_PATIENT_NOTE)
        self.new_patient_note.setWordWrap(True)
        self.new_patient_note.setAccessibleName("Why the lists are not open yet")
        self.new_patient_note.setStyleSheet(
            "background: #fff4d6; color: #5c4200; padding: 6px; border-radius: 4px;"
        )
        self.save_button = QPushButton("Save (Ctrl+S)")
        self.save_button.setAccessibleName("Save patient details")
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Chart sections")

        self.demographics_tab = DemographicsTab()
        self.medications_tab = MedicationsTab()
        self.conditions_tab = ConditionsTab()
        self.conditions_tab.use_worker(context.ops)
        self.vitals_tab = VitalsTab()
        # Alt + the underlined letter opens a section from anywhere in the chart (Ctrl+Tab
        # from a field outside the sections would switch the window's tabs instead). The
        # letters stay clear of the menu bar's (File, Plans, Practice).
        self.tabs.addTab(self.demographics_tab, "&Demographics")
        self.tabs.addTab(self.medications_tab, "&Medications")
        self.tabs.addTab(self.conditions_tab, "&Conditions and allergies")
        self.tabs.addTab(self.vitals_tab, "&Vitals")
        self._expose_tab_widgets()

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.external_id_label)
        top.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.outside_change)
        layout.addWidget(self.visit_notice)
        layout.addWidget(self.new_patient_note)
        layout.addWidget(self.tabs, 1)
        self._save_shortcut = QShortcut(QKeySequence.StandardKey.Save, self)
        self._connect_signals()
        self._apply_permissions()
        if patient_id is not None:
            self.reload()
        self._set_dirty(False)

    # --- construction --------------------------------------------------------------------
    def _expose_tab_widgets(self) -> None:
        """The tabs' widgets as attributes of the chart, as callers and tests know them."""
        demographics = self.demographics_tab
        self.form = demographics.form
        self.contacts = demographics.contacts
        self.body = demographics.body
        self.status_box = demographics.status_box
        self.status_label = demographics.status_label
        self.status_combo = demographics.status_combo
        self.status_reason = demographics.status_reason
        self.status_button = demographics.status_button
        medications = self.medications_tab
        self.med_table = medications.med_table
        self.med_text = medications.med_text
        self.med_dose = medications.med_dose
        self.med_frequency = medications.med_frequency
        self.med_start = medications.med_start
        self.med_source = medications.med_source
        self.med_add = medications.med_add
        self.med_stop = medications.med_stop
        self.med_verify = medications.med_verify
        conditions = self.conditions_tab
        self.condition_table = conditions.condition_table
        self.condition_text = conditions.condition_text
        self.condition_completer = conditions.condition_completer
        self.condition_add = conditions.condition_add
        self.condition_resolve = conditions.condition_resolve
        self.allergy_table = conditions.allergy_table
        self.allergy_substance = conditions.allergy_substance
        self.allergy_reaction = conditions.allergy_reaction
        self.allergy_add = conditions.allergy_add
        self.allergy_remove = conditions.allergy_remove
        vitals = self.vitals_tab
        self.vitals_table = vitals.vitals_table
        self.vitals_when = vitals.vitals_when
        self.vitals_time = vitals.vitals_time
        self.vitals_systolic = vitals.vitals_systolic
        self.vitals_diastolic = vitals.vitals_diastolic
        self.vitals_heart_rate = vitals.vitals_heart_rate
        self.vitals_weight = vitals.vitals_weight
        self.vitals_weight_unit = vitals.vitals_weight_unit
        self.vitals_add = vitals.vitals_add

    def _connect_signals(self) -> None:
        for form in (self.form, self.contacts, self.body):
            form.edited.connect(lambda: self._set_dirty(True))
            form.edited.connect(self._clear_fixed_problems)
        state = self.form.editors["state"]
        assert isinstance(state, QComboBox)
        state.currentIndexChanged.connect(self._state_changed)
        self.save_button.clicked.connect(self.save)
        self._save_shortcut.activated.connect(self.save)
        self.status_button.clicked.connect(self.entries.change_status)
        self.med_add.clicked.connect(self.entries.add_medication)
        # Enter in any field of an entry line adds the entry, as the Add button would (a
        # disabled button ignores the click, so Enter obeys the same permissions).
        for line, button in (
            (self.med_text, self.med_add),
            (self.med_dose, self.med_add),
            (self.med_frequency, self.med_add),
            (self.med_start, self.med_add),
            (self.allergy_substance, self.allergy_add),
            (self.allergy_reaction, self.allergy_add),
            (self.vitals_systolic, self.vitals_add),
            (self.vitals_diastolic, self.vitals_add),
            (self.vitals_heart_rate, self.vitals_add),
            (self.vitals_weight, self.vitals_add),
        ):
            line.returnPressed.connect(button.click)
        self.vitals_tab.enter_pressed_in_time.connect(self.vitals_add.click)
        self.condition_text.returnPressed.connect(self.entries.condition_enter)
        self.med_stop.clicked.connect(self.entries.stop_medication)
        self.med_verify.clicked.connect(self.entries.verify_medication)
        self.condition_add.clicked.connect(self.entries.add_condition)
        self.condition_resolve.clicked.connect(self.entries.resolve_condition)
        self.allergy_add.clicked.connect(self.entries.add_allergy)
        self.allergy_remove.clicked.connect(self.entries.remove_allergy)
        self.vitals_add.clicked.connect(self.entries.add_vitals)
        self._context.data_changed.connect(self._on_data_changed)
        self.outside_change.reload_requested.connect(self._reload_theirs)

    def _apply_permissions(self) -> None:
        can = self._context.can
        exists = self.patient_id is not None
        clinical = can(Permission.EDIT_CLINICAL)
        for widget in (
            self.status_button,
            self.status_combo,
            self.status_reason,
            self.condition_add,
            self.condition_resolve,
            self.condition_text,
            self.allergy_add,
            self.allergy_remove,
            self.allergy_substance,
            self.allergy_reaction,
            self.vitals_add,
        ):
            widget.setEnabled(clinical and exists)
            widget.setToolTip("" if clinical else PHYSICIANS_ONLY)
        verify = can(Permission.VERIFY_MEDICATION)
        self.med_verify.setEnabled(verify and exists)
        self.med_verify.setToolTip("" if verify else PHYSICIANS_ONLY)
        index = self.med_source.findData("verified")
        item = self.med_source.model().item(index)  # type: ignore[attr-defined]
        item.setEnabled(verify)
        item.setToolTip("" if verify else PHYSICIANS_ONLY)
        reported = can(Permission.RECORD_REPORTED_MEDICATION)
        for widget in (self.med_add, self.med_stop, self.med_text):
            widget.setEnabled(reported and exists)
        editable = can(Permission.EDIT_DEMOGRAPHICS)
        for form in (self.form, self.contacts, self.body):
            form.set_read_only(not editable, "You may not change patient details.")
        self.save_button.setEnabled(editable)
        self.new_patient_note.setVisible(not exists)
        waiting = (
            self.status_button, self.status_combo, self.status_reason,
            self.med_add, self.med_text, self.med_stop, self.med_verify,
            self.condition_add, self.condition_text, self.condition_resolve,
            self.allergy_add, self.allergy_substance, self.allergy_reaction, self.allergy_remove,
            self.vitals_add,
        )
        if not exists:
            for widget in waiting:
                widget.setToolTip(SAVE_FIRST)

    # --- tabs for later features ---------------------------------------------------------
    def add_tab(self, title: str, widget: QWidget) -> int:
        """Add a feature's tab (interaction review, protocol, check-ins); returns its index."""
        return self.tabs.addTab(widget, title)

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the chart again (audited as a view) and show it; unsaved edits are replaced."""
        assert self.patient_id is not None
        db, actor = self._context.db, self._context.actor
        with db.read_session() as session:
            self.record = service.patient_record_unaudited(session, actor, self.patient_id)
            suggestions = service.condition_suggestions(session)
            external_id = external_id_for(session, self.patient_id)
            on_visit = patients_on_visit(session, [self.patient_id]).get(self.patient_id)
        # Written now, or held until the page check after log-in passes: never waited for.
        db.record_event_when_writable(actor, PATIENT_VIEWED, patient_id=self.patient_id)
        # Kept from a roster import, for reference only (KetaDesk's MRN is the record number).
        self.external_id_label.setText(
            f"Previous system's ID: {external_id}" if external_id else ""
        )
        self.external_id_label.setVisible(bool(external_id))
        self.conditions_tab.set_condition_suggestions(suggestions)
        self._show_visit_notice(on_visit)
        self.show_record(self.record)

    def _show_visit_notice(self, marker: VisitMarker | None) -> None:
        """A patient checked out to a visit pack: editing here is allowed and kept; the return
        applies the laptop's change only where the office left a record as it was, and a
        record changed on both sides waits for a physician (storage/visits, core/visit_merge)."""
        self.visit_notice.setVisible(marker is not None)
        if marker is None:
            self.visit_notice.clear()
            return
        words = marker.words()
        self.visit_notice.setText(
            f"{words[0].upper()}{words[1:]}, {lease_words(marker)}. You can still edit here and "
            "what you save is kept. If the laptop changes the same record, both copies wait "
            "side by side for a physician when the pack is returned; neither replaces the other."
        )

    @property
    def conflict_dialog(self) -> EditConflictDialog | None:
        """The open "Someone else saved this chart" screen, if any."""
        return self.conflicts.dialog

    def show_record(self, record: PatientRecord) -> None:
        """Show ``record`` (the details become the base of the next save; not dirty)."""
        d = record.demographics
        self.title.set_full_text(f"{d.last_name}, {d.first_name}  ·  {record.mrn}")
        self.setWindowTitle(f"{d.last_name}, {d.first_name} — {record.mrn}")
        self.demographics_tab.show_record(record)
        self.conflicts.remember(record)
        self.medications_tab.show_medications(record.medications)
        self.conditions_tab.show_entries(record.conditions, record.allergies)
        self.vitals_tab.show_vitals(record.vitals)
        self._set_dirty(False)

    def show_outside_change(
        self, by_name: str, at: datetime, kinds: frozenset[str] = frozenset({PATIENT})
    ) -> None:
        """Someone at another computer changed this patient (live updates on a server): say
        who and when. The chart reloads on the ``data_changed`` that follows only when nothing
        is being edited here; unsaved edits are never replaced without Reload. ``kinds``
        (``live_updates.CHANGE_KINDS``) says what changed: the other tabs keep their own
        unsaved work as they do for a change made here."""
        self.outside_change.show_change(
            by_name, at, kinds, has_unsaved_edits=self._dirty and PATIENT in kinds
        )

    def _reload_theirs(self) -> None:
        self.reload()
        self.outside_change.hide()

    def _state_changed(self) -> None:
        self.demographics_tab.state_changed()

    def _on_data_changed(self, what: str) -> None:
        if self.patient_id is not None and what == f"patient:{self.patient_id}" and not self._dirty:
            self.reload()
        elif self.patient_id is not None and what == "visits":
            # Checked out or returned meanwhile: only the notice changes; typed work stays.
            with self._context.db.read_session() as session:
                marker = patients_on_visit(session, [self.patient_id]).get(self.patient_id)
            self._show_visit_notice(marker)

    # --- dirty state and closing ---------------------------------------------------------
    @property
    def is_dirty(self) -> bool:
        return self._dirty

    def mark_dirty(self) -> None:
        """The details hold edits not saved yet (a merge put back)."""
        self._set_dirty(True)

    def _set_dirty(self, dirty: bool) -> None:
        self._dirty = dirty
        base = self.windowTitle().removesuffix(" *")
        self.setWindowTitle(base + (" *" if dirty else ""))
        self.save_button.setText("Save (Ctrl+S)" + (" •" if dirty else ""))

    def ask_unsaved_changes(self) -> QMessageBox.StandardButton:
        """Ask what to do with unsaved changes: Save, Discard or Cancel (tests replace this)."""
        return QMessageBox.question(
            self,
            "Unsaved changes",
            "This patient's details have unsaved changes. Save them before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )

    def ask_confirm_minor(self) -> bool:
        """Ask to confirm recording a patient under 18 (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Patient under 18",
            "This date of birth makes the patient younger than 18. KetaDesk treatment is for "
            "adults. Record this patient anyway?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_create_duplicate(self, error: service.PossibleDuplicateError) -> bool:
        """Ask whether a possible duplicate is really a different person (tests replace this)."""
        answer = QMessageBox.question(
            self, "Possible duplicate", error.message + "\n\nSave as a different person?"
        )
        return answer == QMessageBox.StandardButton.Yes

    def may_close(self) -> bool:
        """True when the chart may close: no unsaved changes, or saved/discarded on request."""
        if not self._dirty:
            return True
        answer = self.ask_unsaved_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.may_close():
            event.accept()
        else:
            event.ignore()

    # --- saving demographics -------------------------------------------------------------
    def draft(self) -> tuple[PatientDemographics, dict[str, str]]:
        """The demographics as typed, plus problems that stop them being read (dob)."""
        return self.demographics_tab.draft()

    def _measurements(self) -> tuple[float | None, float | None, dict[str, str]]:
        return self.demographics_tab.measurements()

    def _problems(
        self,
    ) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
        """The demographics' problems ``{field: (message, is_confirmation)}`` and the body's."""
        draft, read_problems = self.draft()
        _, _, body_problems = self._measurements()
        today = datetime.now(UTC).astimezone().date()
        found = validate_demographics(draft, today)
        problems = {p.field: (p.message, p.level == "confirm") for p in reversed(found)}
        problems.update({k: (v, False) for k, v in read_problems.items()})
        return problems, body_problems

    def _clear_fixed_problems(self) -> None:
        """After an edit, take away the message of each field that is now fine (new problems
        wait for Save, so a half-typed field is not scolded)."""
        if not any(f.has_shown_messages() for f in (self.form, self.contacts, self.body)):
            return
        problems, body_problems = self._problems()
        self.form.keep_problems(problems)
        self.contacts.keep_problems(problems)
        self.body.keep_problems({k: (v, False) for k, v in body_problems.items()})
        shown = sum(f.shown_message_count() for f in (self.form, self.contacts, self.body))
        if shown:
            self.show_banner(_needs_attention(shown))
        else:
            self.banner.setVisible(False)

    def save(self) -> bool:
        """Validate and save the demographics; on any problem keep everything typed."""
        draft, _ = self.draft()
        height_cm, weight_kg, body_problems = self._measurements()
        today = datetime.now(UTC).astimezone().date()
        problems, body_problems = self._problems()
        self.form.show_problems(problems)
        self.contacts.show_problems(problems)
        self.body.show_problems({k: (v, False) for k, v in body_problems.items()})
        errors = [k for k, (_, confirm) in problems.items() if not confirm]
        if errors or body_problems:
            self.show_banner(_needs_attention(len(errors) + len(body_problems)))
            return False
        confirmed_minor = False
        if problems:  # only "confirm" problems remain: the patient is under 18
            if not self.ask_confirm_minor():
                self.show_banner("Not saved: the patient is under 18 and was not confirmed.")
                return False
            confirmed_minor = True
        allow_duplicate = False
        while True:
            try:
                record = self._store(
                    draft, today, confirmed_minor, allow_duplicate, height_cm, weight_kg
                )
            except ChartChangedError as error:
                return self.conflicts.compare_with_stored(error)
            except service.PossibleDuplicateError as error:
                if allow_duplicate or not self.ask_create_duplicate(error):
                    self.show_banner(error.message)
                    return False
                allow_duplicate = True
                continue
            except UserFacingError as error:
                self.show_banner(error.message)
                return False
            break
        self.banner.setVisible(False)
        self.outside_change.hide()  # what it said about unsaved edits no longer holds
        created = self.patient_id is None
        self.patient_id = record.id
        self.record = record
        self.show_record(record)
        self._apply_permissions()
        self.patient_saved.emit(record.id)
        self._context.data_changed.emit("patients" if created else f"patient:{record.id}")
        return True

    def _store(
        self,
        draft: PatientDemographics,
        today: date,
        confirmed_minor: bool,
        allow_duplicate: bool,
        height_cm: float | None,
        weight_kg: float | None,
    ) -> PatientRecord:
        actor = self._context.actor
        with self._context.db.session() as session:
            if self.patient_id is None:
                return service.create_patient(
                    session,
                    actor,
                    draft,
                    today=today,
                    confirmed_minor=confirmed_minor,
                    allow_duplicate=allow_duplicate,
                    height_cm=height_cm,
                    weight_kg=weight_kg,
                )
            record = service.update_demographics(
                session,
                actor,
                self.patient_id,
                draft,
                today=today,
                confirmed_minor=confirmed_minor,
                allow_duplicate=allow_duplicate,
                height_cm=height_cm,
                expected_version=self.conflicts.version,
            )
            if weight_kg is not None:
                service.add_vitals(
                    session,
                    actor,
                    self.patient_id,
                    measured_at=datetime.now(UTC),
                    weight_kg=weight_kg,
                )
                session.expire_all()
                record = service.get_patient_record(session, actor, self.patient_id)
            return record

    def show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner.setVisible(True)

    # --- list entries (saved at once) ----------------------------------------------------
    @property
    def actor(self) -> Actor:
        return self._context.actor

    def save_entry(self, action: object) -> bool:
        """Run ``action(session)`` in one transaction; show a problem in the banner."""
        return self.run_entry_change(action, None)

    def run_entry_change(
        self, action: object, on_changed: Callable[[EntryChangedError], None] | None
    ) -> bool:
        """Run ``action(session)`` in one transaction; a line changed elsewhere meanwhile goes
        to ``on_changed``, another problem to the banner. True when saved."""
        assert self.patient_id is not None and callable(action)
        try:
            with self._context.db.session() as session:
                action(session)
        except EntryChangedError as error:
            if on_changed is None:
                self.show_banner(error.message)
            else:
                on_changed(error)
            return False
        except UserFacingError as error:
            self.show_banner(error.message)
            return False
        self.banner.setVisible(False)
        self.refresh_lists()
        self._context.data_changed.emit(f"patient:{self.patient_id}")
        return True

    def refresh_lists(self) -> None:
        """Read the chart again, keeping patient details being edited (and what they stand
        on, so saving them still compares with a change made elsewhere)."""
        dirty = self._dirty
        keep = self.demographics_tab.typed_values()
        base = self.conflicts.base
        self.reload()
        if dirty:  # adding a medication must not throw away demographics being edited
            if self.conflicts.base[0] != base[0]:
                # Someone changed the details meanwhile: the edits still stand on what was
                # shown before, so saving them compares with the stored chart.
                self.conflicts.base = base
            self.demographics_tab.restore_values(keep)
            self._set_dirty(True)


def _needs_attention(count: int) -> str:
    return (
        f"{count} field{'s' if count != 1 else ''} need{'s' if count == 1 else ''} "
        "attention; nothing was saved yet. See the messages under the fields."
    )
