// The enrolment link's page: the person invited (or asked to re-enrol) sets their own password and second factor.
export const enrolmentFr = {
  "enrolment.titleInvitation": "Activer votre accès à Vigie",
  "enrolment.titleReenrolment": "Renouveler vos identifiants Vigie",
  "enrolment.loading": "Lecture du lien…",
  "enrolment.noToken": "Ce lien est incomplet : ouvrez le lien reçu en entier, sans le modifier.",
  "enrolment.refused":
    "Ce lien n’est plus valable (inconnu, déjà utilisé, révoqué ou expiré). Demandez-en un nouveau à votre administrateur.",
  "enrolment.account": "Compte",
  "enrolment.name": "Nom",
  "enrolment.role": "Rôle",
  "enrolment.tenant": "Collectivité",
  "enrolment.expires": "Lien valable jusqu’au",
  "enrolment.howInvitation":
    "Nouveau sur Vigie : choisissez un mot de passe d’au moins 12 caractères. Vous avez déjà un compte Vigie à cette " +
    "adresse : donnez son mot de passe actuel, et un code de son second facteur s’il en a un ; le rôle s’ajoute à ce compte.",
  "enrolment.howReenrolment":
    "Choisissez un nouveau mot de passe d’au moins 12 caractères. L’ancien mot de passe et l’ancien second facteur ne " +
    "fonctionnent plus.",
  "enrolment.secondFactorTitle": "Second facteur",
  "enrolment.secondFactorHow":
    "Scannez ce code avec votre application d’authentification (FreeOTP, Aegis, Google Authenticator…), puis donnez le " +
    "code à six chiffres qu’elle affiche. Ce code QR n’est montré qu’ici : personne d’autre ne le reçoit.",
  "enrolment.qrLabel": "Code QR du second facteur à scanner",
  "enrolment.secretManual": "Saisie manuelle de la clé",
  "enrolment.password": "Mot de passe",
  "enrolment.passwordHint": "Au moins 12 caractères ; une phrase de passe se retient mieux.",
  "enrolment.confirm": "Confirmation du mot de passe",
  "enrolment.mismatch": "Les deux mots de passe diffèrent.",
  "enrolment.code": "Code à six chiffres de votre application d’authentification",
  "enrolment.submit": "Enregistrer mes identifiants",
  "enrolment.doneTitle": "Vos identifiants sont enregistrés",
  "enrolment.done": "Le compte {email} est prêt. Ce lien ne servira plus.",
  "enrolment.signIn": "Se connecter à la console",
} as const;
